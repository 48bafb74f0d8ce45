import Testing

@testable import ParleyServer

@Suite("Handing memory back after clients leave")
struct MemoryReturnTests {
    /// The policy's answers to a series of session counts, one per interval.
    private func answers(threshold: Int, _ counts: [Int]) -> [Bool] {
        var policy = MemoryReturnPolicy(threshold: threshold)
        return counts.map { policy.observe(sessions: $0) }
    }

    @Test func returnsMemoryOneIntervalAfterEnoughSessionsClose() {
        let counts = [
            0, 4000, 6000,  // clients arrive: nothing to return
            5001,  // 999 left: under the threshold
            5000,  // a thousand from the peak have left…
            4800,  // …memory goes back now, when their heartbeat entries have let go of them
            4000, 3801,  // the peak starts again from 4,800: 999 down
            3800,  // 1,000 down
            3800,  // memory goes back
            3800, 3800,  // once is enough while nothing changes
        ]
        #expect(answers(threshold: 1000, counts) == [false, false, false, false, false, true, false, false, false, true, false, false])
    }

    @Test func clientsWhoComeBackStillLeaveMemoryToReturn() {
        // A reconnect wave: the old sessions' memory is free although the count recovered.
        #expect(answers(threshold: 100, [500, 300, 500, 500]) == [false, false, true, false])
    }

    @Test func theResidentSizeIsRead() throws {
        let resident = try #require(ProcessMemory.residentBytes())
        // A test process holds more than a megabyte and, here, less than a terabyte.
        #expect(resident > 1 << 20 && resident < 1 << 40)
    }
}
