// Typed metadata access with errors that name the key.

extension GGUFFile {
    /// A required integer key.
    public func int(_ key: String) throws -> Int {
        guard let v = value(key) else { throw GGUFError.missingKey(key) }
        guard let i = v.int else { throw GGUFError.wrongKeyType(key: key, expected: "an integer", found: v.type) }
        return i
    }

    /// A required float key (any numeric type).
    public func float(_ key: String) throws -> Float {
        guard let v = value(key) else { throw GGUFError.missingKey(key) }
        guard let d = v.double else { throw GGUFError.wrongKeyType(key: key, expected: "a number", found: v.type) }
        return Float(d)
    }

    /// A required string key.
    public func string(_ key: String) throws -> String {
        guard let v = value(key) else { throw GGUFError.missingKey(key) }
        guard let s = v.string else { throw GGUFError.wrongKeyType(key: key, expected: "a string", found: v.type) }
        return s
    }

    /// A key that is either a scalar or a per-layer array, expanded to `count` numbers.
    /// A scalar is broadcast; an array must have at least `count` entries (extra entries are ignored).
    public func numbers(_ key: String, count: Int) throws -> [Double]? {
        guard let v = value(key) else { return nil }
        if let d = v.double { return Array(repeating: d, count: count) }
        guard let a = v.array else { throw GGUFError.wrongKeyType(key: key, expected: "a number or array", found: v.type) }
        let ds = try a.map { e -> Double in
            guard let d = e.double else { throw GGUFError.wrongKeyType(key: key, expected: "numeric array elements", found: e.type) }
            return d
        }
        guard ds.count >= count else {
            throw GGUFError.wrongKeyType(key: key, expected: "an array of \(count) entries (has \(ds.count))", found: .array)
        }
        return Array(ds.prefix(count))
    }

    /// A required tensor, checked against an expected shape (ggml order).
    public func tensor(_ name: String, shape: [Int]) throws -> GGUFTensor {
        guard let t = tensor(name) else { throw GGUFError.missingTensor(name) }
        guard t.shape == shape else { throw GGUFError.shapeMismatch(tensor: name, expected: shape, found: t.shape) }
        return t
    }

    /// An optional tensor, checked against an expected shape when present.
    public func optionalTensor(_ name: String, shape: [Int]) throws -> GGUFTensor? {
        guard let t = tensor(name) else { return nil }
        guard t.shape == shape else { throw GGUFError.shapeMismatch(tensor: name, expected: shape, found: t.shape) }
        return t
    }
}
