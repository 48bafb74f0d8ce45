import NIOCore
import Testing

@testable import EngineIO

@Suite("Heartbeat")
struct HeartbeatTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func pingsEveryIntervalWhilePongsArrive() {
        var heartbeat = Heartbeat(pingInterval: .seconds(25), pingTimeout: .seconds(20), now: start)
        #expect(heartbeat.firstTimerDeadline == start + .seconds(25))
        var now = start + .seconds(25)
        #expect(heartbeat.timerFired(now: now) == .sendPing(timerAt: now + .seconds(20)))
        #expect(heartbeat.isAwaitingPong)
        now = now + .seconds(1)
        let expected = heartbeat.pongReceived(now: now)
        #expect(expected)
        // The timer set for the pong deadline fires early: it only moves to the next ping.
        #expect(heartbeat.timerFired(now: now + .seconds(19)) == .schedule(timerAt: now + .seconds(25)))
        #expect(heartbeat.timerFired(now: now + .seconds(25)) == .sendPing(timerAt: now + .seconds(45)))
    }

    @Test func closesWhenThePongIsLate() {
        var heartbeat = Heartbeat(pingInterval: .milliseconds(100), pingTimeout: .milliseconds(50), now: start)
        let ping = start + .milliseconds(100)
        #expect(heartbeat.timerFired(now: ping) == .sendPing(timerAt: ping + .milliseconds(50)))
        #expect(heartbeat.timerFired(now: ping + .milliseconds(49)) == .schedule(timerAt: ping + .milliseconds(50)))
        #expect(heartbeat.timerFired(now: ping + .milliseconds(50)) == .timedOut)
        #expect(heartbeat.timerFired(now: ping + .milliseconds(500)) == .none)
        let late = heartbeat.pongReceived(now: ping + .milliseconds(60))
        #expect(!late)
    }

    @Test func unexpectedPongIsIgnored() {
        var heartbeat = Heartbeat(pingInterval: .seconds(1), pingTimeout: .seconds(1), now: start)
        let unexpected = heartbeat.pongReceived(now: start)
        #expect(!unexpected)
        #expect(heartbeat.timerFired(now: start + .milliseconds(10)) == .schedule(timerAt: start + .seconds(1)))
    }

    @Test func earlyTimerDoesNotPing() {
        var heartbeat = Heartbeat(pingInterval: .seconds(1), pingTimeout: .seconds(1), now: start)
        #expect(heartbeat.timerFired(now: start) == .schedule(timerAt: start + .seconds(1)))
    }

    @Test func stoppedHeartbeatDoesNothing() {
        var heartbeat = Heartbeat(pingInterval: .seconds(1), pingTimeout: .seconds(1), now: start)
        heartbeat.stop()
        #expect(heartbeat.timerFired(now: start + .seconds(5)) == .none)
    }
}

@Suite("Session transport and upgrade")
struct SessionStateMachineTests {
    let a = EnginePacket.message("a")
    let b = EnginePacket.message("b")
    let c = EnginePacket.message("c")

    @Test func pollWithQueuedPacketsAnswersAtOnce() {
        var machine = SessionStateMachine(transport: .polling, maxQueuedBytes: 1000)
        #expect(machine.send([a]) == .queued)
        #expect(machine.send([b]) == .queued)
        #expect(machine.pollRequested() == .respond([a, b]))
        #expect(machine.queue.isEmpty && machine.queuedBytes == 0)
    }

    /// A poll carries at most 16 packets (python-engineio refuses more); the rest wait, in
    /// order, for the next polls, and the queue's byte count follows.
    @Test func aPollCarriesAtMostSixteenPackets() {
        let packets = (0..<40).map { EnginePacket.message("m\($0)") }
        var machine = SessionStateMachine(transport: .polling, maxQueuedBytes: 10_000)
        for packet in packets { #expect(machine.send([packet]) == .queued) }
        var received: [EnginePacket] = []
        for expected in [16, 16, 8] {
            guard case .respond(let batch) = machine.pollRequested() else { Issue.record("no response"); return }
            #expect(batch.count == expected)
            received += batch
            #expect(machine.queuedBytes == machine.queue.reduce(0) { $0 + $1.byteCount })
            machine.pollFinished()
        }
        #expect(received == packets && machine.queue.isEmpty && machine.queuedBytes == 0)
        // One send of more packets than a poll may carry, to a parked poll.
        #expect(machine.pollRequested() == .park)
        #expect(machine.send(Array(packets.prefix(20))) == .respondParkedPoll(Array(packets.prefix(16))))
        machine.pollFinished()
        #expect(machine.pollRequested() == .respond(Array(packets[16..<20])))
    }

    @Test func emptyPollParksUntilSomethingIsSent() {
        var machine = SessionStateMachine(transport: .polling, maxQueuedBytes: 1000)
        #expect(machine.pollRequested() == .park)
        #expect(machine.send([a]) == .respondParkedPoll([a]))
        #expect(!machine.pollParked)
        // Until the response is written, packets queue.
        #expect(machine.send([b]) == .queued)
        machine.pollFinished()
        #expect(machine.pollRequested() == .respond([b]))
    }

    @Test func secondGetIsRejected() {
        var machine = SessionStateMachine(transport: .polling, maxQueuedBytes: 1000)
        #expect(machine.pollRequested() == .park)
        #expect(machine.pollRequested() == .rejectDuplicate)
    }

    @Test func secondPostIsRejected() {
        var machine = SessionStateMachine(transport: .polling, maxQueuedBytes: 1000)
        let first = machine.postBegan()
        #expect(first)
        let overlapping = machine.postBegan()
        #expect(!overlapping)
        machine.postFinished()
        let next = machine.postBegan()
        #expect(next)
    }

    @Test func queueBoundOverflowsAndVolatileIsDropped() {
        var machine = SessionStateMachine(transport: .polling, maxQueuedBytes: 5)
        #expect(machine.send([a]) == .queued) // 2 bytes
        #expect(machine.send([b], volatile: true) == .dropped)
        #expect(machine.send([b]) == .queued) // 4 bytes
        #expect(machine.send([c]) == .overflow)
        #expect(machine.queue.count == 2)
    }

    @Test func volatileGoesToAParkedPoll() {
        var machine = SessionStateMachine(transport: .polling, maxQueuedBytes: 100)
        _ = machine.pollRequested()
        #expect(machine.send([a], volatile: true) == .respondParkedPoll([a]))
    }

    @Test func upgradeAnswersProbeNoopsParkedPollAndFlushesInOrder() {
        var machine = SessionStateMachine(transport: .polling, maxQueuedBytes: 1000)
        #expect(machine.pollRequested() == .park)
        #expect(machine.probeReceived() == .answerProbe(noopParkedPoll: true))
        #expect(machine.phase == .upgrading)
        // The poll was answered with a noop; what is sent now waits for the upgrade.
        machine.pollFinished()
        #expect(machine.send([a]) == .queued)
        #expect(machine.send([b]) == .queued)
        #expect(machine.upgradeReceived() == .flush([a, b], noopParkedPoll: false))
        #expect(machine.transport == .websocket)
        #expect(machine.send([c]) == .writeWebSocket([c]))
        #expect(machine.pollRequested() == .rejectTransport)
        _ = machine.close()
        // A closed session still tells which transport it ended on (the metrics need it).
        #expect(machine.transport == .websocket)
    }

    @Test func pollDuringUpgradeStillDelivers() {
        var machine = SessionStateMachine(transport: .polling, maxQueuedBytes: 1000)
        #expect(machine.probeReceived() == .answerProbe(noopParkedPoll: false))
        #expect(machine.send([a]) == .queued)
        #expect(machine.pollRequested() == .respond([a]))
        #expect(machine.pollRequested() == .rejectDuplicate)
        machine.pollFinished()
        // A poll that would wait is ended with a noop, so that the client can send `5`.
        #expect(machine.pollRequested() == .respond([EnginePacket(.noop)]))
        machine.pollFinished()
        #expect(machine.upgradeReceived() == .flush([], noopParkedPoll: false))
    }

    @Test func upgradeWithoutProbeIsRejected() {
        var machine = SessionStateMachine(transport: .polling, maxQueuedBytes: 1000)
        #expect(machine.upgradeReceived() == .reject)
        var ws = SessionStateMachine(transport: .websocket, maxQueuedBytes: 1000)
        #expect(ws.probeReceived() == .reject)
    }

    @Test func abandonedUpgradeFallsBackToPolling() {
        var machine = SessionStateMachine(transport: .polling, maxQueuedBytes: 1000)
        _ = machine.probeReceived()
        machine.upgradeAbandoned()
        #expect(machine.phase == .polling)
        #expect(machine.upgradeReceived() == .reject)
        #expect(machine.probeReceived() == .answerProbe(noopParkedPoll: false))
    }

    @Test func closeAnswersParkedPollOnceAndDropsLaterSends() {
        var machine = SessionStateMachine(transport: .polling, maxQueuedBytes: 1000)
        _ = machine.pollRequested()
        #expect(machine.close() == .init(answerParkedPoll: true, wasOpen: true))
        #expect(machine.close() == .init(answerParkedPoll: false, wasOpen: false))
        #expect(machine.transport == .polling)
        #expect(machine.send([a]) == .dropped)
        #expect(machine.pollRequested() == .rejectTransport)
    }
}
