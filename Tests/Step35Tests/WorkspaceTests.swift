import Foundation
import GGUF
import Kernels
import ModelKit
@testable import Step35
import Testing

/// The forward pass's buffers kept from pass to pass (`Step35Workspace`).
@Suite struct WorkspaceTests {
    static func model() throws -> Step35Model {
        try Step35Model(file: try GGUFFile(bytes: Step35Synthetic.gguf(shape: .tiny)), threads: 2)
    }

    static func argmax(_ l: [Float]) -> Int32 { Int32(l.indices.max { l[$0] < l[$1] }!) }

    /// The storage of the buffers a decode step writes.
    static func addresses(_ ws: Step35Workspace) -> [UnsafeRawPointer?] {
        let floats = [ws.hidden, ws.attnIn, ws.ffnIn, ws.q, ws.k, ws.v, ws.attnOut, ws.attnProj, ws.ffnOut, ws.probs, ws.weights,
                      ws.lastHidden, ws.lastNormed, ws.logitsOut[0]]
        return floats.map { a in a.withUnsafeBytes { UnsafeRawPointer($0.baseAddress) } }
            + [ws.experts, ws.tokens, ws.positions].map { a in a.withUnsafeBytes { UnsafeRawPointer($0.baseAddress) } }
    }

    /// If this fails, reusing one workspace changes what a pass computes: a buffer keeps stale rows from a
    /// larger pass, or one that is added into is not cleared. Two sequences' prompts (7 and 3 tokens) and
    /// decode steps interleaved through one workspace must give the same logits, bit for bit, as fresh
    /// buffers for every pass.
    @Test func reusedBuffersComputeWhatFreshOnesDo() throws {
        let m = try Self.model()
        let ws = Step35Workspace()
        let a1 = m.makeCache(context: 64), a2 = m.makeCache(context: 64), b1 = m.makeCache(context: 64), b2 = m.makeCache(context: 64)
        func both(_ tokens: [Int32], _ reused: Step35Cache, _ fresh: Step35Cache) throws -> Int32 {
            let x = try m.forward([SequenceInput(tokens, cache: reused)], PassContext(workspace: ws)).logits[0]
            let y = try m.forward([SequenceInput(tokens, cache: fresh)], PassContext()).logits[0]
            #expect(x == y, "\(tokens.count) tokens at \(reused.nextPosition - tokens.count)")
            return Self.argmax(x)
        }
        var ta = try both([3, 1, 4, 1, 5, 9, 2], a1, a2)
        ta = try both([ta], a1, a2)
        var tb = try both([2, 7, 1], b1, b2)
        for _ in 0..<3 {
            ta = try both([ta], a1, a2)
            tb = try both([tb], b1, b2)
        }
    }

    /// If this fails, a steady-state decode step allocates its intermediates again (what `malloc-per-token.sh`
    /// measures): after a prompt and one decode step, further decode steps through the same workspace must
    /// leave every pass buffer at the same storage and hand out the logits in the workspace's own buffer.
    @Test func decodeStepsKeepTheirBuffers() throws {
        let m = try Self.model()
        let ws = Step35Workspace(), cache = m.makeCache(context: 64)
        var last = Self.argmax(try m.forward([SequenceInput([3, 1, 4, 1, 5], cache: cache)], PassContext(workspace: ws)).logits[0])
        last = Self.argmax(try m.forward([SequenceInput([last], cache: cache)], PassContext(workspace: ws)).logits[0])
        let before = Self.addresses(ws)
        for _ in 0..<3 {
            let out = try m.forward([SequenceInput([last], cache: cache)], PassContext(workspace: ws))
            let handed = out.logits[0].withUnsafeBytes { UnsafeRawPointer($0.baseAddress) }
            #expect(handed == ws.logitsOut[0].withUnsafeBytes { UnsafeRawPointer($0.baseAddress) })
            last = Self.argmax(out.logits[0])
        }
        #expect(Self.addresses(ws) == before)
    }
}
