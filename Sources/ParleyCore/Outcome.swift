import Synchronization

/// A result that arrives through a callback, awaited by one task: ``settle(_:)`` may come before
/// or after ``value`` is awaited. Lets the awaiting form of an operation be built on its
/// callback form, so that the two cannot drift apart.
final class Outcome<Success: Sendable>: Sendable {
    private enum State {
        case waiting
        case awaited(CheckedContinuation<Result<Success, ChatError>, Never>)
        case settled(Result<Success, ChatError>)
        case done
    }

    private let state = Mutex<State>(.waiting)

    /// Delivers the result; only the first call counts.
    @Sendable func settle(_ result: Result<Success, ChatError>) {
        let continuation = state.withLock { state -> CheckedContinuation<Result<Success, ChatError>, Never>? in
            switch state {
            case .waiting:
                state = .settled(result)
                return nil
            case .awaited(let continuation):
                state = .done
                return continuation
            case .settled, .done:
                return nil
            }
        }
        continuation?.resume(returning: result)
    }

    /// The result, once settled. Await it once.
    var value: Result<Success, ChatError> {
        get async {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Result<Success, ChatError>? in
                    switch state {
                    case .settled(let result):
                        state = .done
                        return result
                    case .waiting:
                        state = .awaited(continuation)
                        return nil
                    case .awaited, .done:
                        preconditionFailure("an outcome is awaited once")
                    }
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }
}
