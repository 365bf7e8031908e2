// Wall-clock intervals for timings and profiles.
import Dispatch

/// Seconds elapsed since `t0` (monotonic clock).
public func secondsSince(_ t0: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
}
