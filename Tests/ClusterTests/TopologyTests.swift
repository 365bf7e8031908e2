import Cluster
import Testing

@Suite struct TopologyTests {
    func parse(_ yaml: String) throws -> Topology { try Topology(yaml: yaml, file: "t.yaml") }

    /// If this fails, the built-in strategies stop producing EP-group (contiguous) or striped layouts.
    @Test func strategies() throws {
        let c = try parse("experts: 8\nheads: 1\nworkers: 2\n")
        #expect(c.experts(layer: 3, worker: 0) == [0, 1, 2, 3])
        let r = try parse("experts: 8\nheads: 1\nworkers: 3\nplacement:\n  strategy: round-robin\n")
        #expect(r.experts(layer: 3, worker: 1) == [1, 4, 7])
        #expect(r.ranks == 4 && r.dispatch == .f32)
    }

    /// If this fails, explicit maps, per-layer overrides or replicas are read wrongly.
    @Test func mapsAndReplicas() throws {
        let t = try parse("""
            experts: 6
            heads: 2
            workers: 2
            dispatch: bf16
            threads: {heads: 2, workers: 3}
            placement:
              strategy: map
              map:
                0: [0-1, 5]
                1: [2-4]
              layers:
                7:
                  0: [0-5]
                  1: [3]
            replicas:
              - {expert: 2, worker: 0}
            """)
        #expect(t.owners(layer: 3, expert: 5) == [0])
        #expect(t.owners(layer: 3, expert: 2) == [1, 0])
        #expect(t.owners(layer: 7, expert: 3) == [0, 1])
        #expect(t.headThreads == 2 && t.workerThreads == 3 && t.dispatch == .bf16)
    }

    /// If this fails, a malformed topology is accepted or its error lacks the file, the line or the problem.
    @Test(arguments: [
        ("experts: 8\nheads: 1\nworkers: 2\nplacement:\n  strategy: map\n  map:\n    0: [0-3]\n    1: [4-6]\n", 7, "expert 7 is not placed"),
        ("experts: 8\nheads: 1\nworkers: 2\nplacement:\n  strategy: map\n  map:\n    0: [0-3]\n    2: [4-7]\n", 8, "worker index 2 is out of range"),
        ("experts: 8\nheads: 1\nworkers: 2\nreplicas:\n  - {expert: 1, worker: 5}\n", 5, "worker index 5 is out of range"),
        ("experts: 8\nheads: 1\nworkers: 2\ndispatch: fp8\n", 4, "dispatch 'fp8'"),
        ("experts: 8\nheads: 1\nworkerz: 2\n", 3, "unknown key 'workerz'"),
        ("experts: 8\nheads: 1\n", 1, "missing required key 'workers'"),
        ("experts: 8\nheads: 1\nworkers: 2\nplacement:\n  strategy: map\n  map:\n    0: [0-9]\n    1: [1]\n", 7, "outside 0..<8"),
        ("experts: [8\n", 2, "not valid YAML"),
        ("experts: 8\nheads: 1\nworkers: 2\nmicro_batches: 0\n", 4, "micro_batches must be an integer from 1 to 8"),
    ])
    func malformed(yaml: String, line: Int, problem: String) {
        do {
            _ = try parse(yaml)
            Issue.record("accepted: \(yaml)")
        } catch let e as TopologyError {
            #expect(e.line == line, "\(e)")
            #expect(e.description.hasPrefix("t.yaml:"), "\(e)")
            #expect(e.problem.contains(problem), "\(e)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    /// If this fails, a topology that does not fit the job or the model is not refused.
    @Test func jobAndModelMismatch() throws {
        let t = try parse("experts: 8\nheads: 1\nworkers: 2\n")
        #expect(throws: TopologyError.self) { try t.validate(worldSize: 4, modelExperts: 8, moeLayers: [2, 3]) }
        #expect(throws: TopologyError.self) { try t.validate(worldSize: 3, modelExperts: 288, moeLayers: [2, 3]) }
        try t.validate(worldSize: 3, modelExperts: 8, moeLayers: [2, 3])
        do { try t.validate(worldSize: 5, modelExperts: 8, moeLayers: []) } catch {
            #expect("\(error)".contains("mpirun -n 5"))
        }
    }
}
