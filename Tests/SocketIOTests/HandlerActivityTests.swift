import Testing

@testable import SocketIO

/// The count of sockets running handlers that a stopping server waits on.
@Suite struct HandlerActivityTests {
    @Test func idleAnswersAtOnceWhenNoSocketIsBusy() async {
        let activity = HandlerActivity()
        let clock = ContinuousClock()
        let started = clock.now
        #expect(await activity.idle(within: .seconds(30)) == 0)
        #expect(clock.now - started < .seconds(5))
    }

    @Test func idleWaitsForTheLastBusySocket() async throws {
        let activity = HandlerActivity()
        activity.begin()
        activity.begin()
        let waiter = Task { await activity.idle(within: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(50))
        activity.end()
        try await Task.sleep(for: .milliseconds(50))
        let clock = ContinuousClock()
        let released = clock.now
        activity.end()
        #expect(await waiter.value == 0)
        // Released by the last end, not by its 30 s limit.
        #expect(clock.now - released < .seconds(5))
    }

    @Test func idleGivesUpAfterItsLimitAndCountsWhoIsStillBusy() async {
        let activity = HandlerActivity()
        activity.begin()
        activity.begin()
        let clock = ContinuousClock()
        let started = clock.now
        #expect(await activity.idle(within: .milliseconds(100)) == 2)
        #expect(clock.now - started >= .milliseconds(100))
        // A later end finds no waiter left to resume.
        activity.end()
        activity.end()
        #expect(await activity.idle(within: .seconds(30)) == 0)
    }
}
