import Testing

@testable import ParleyServer

@Suite("Connections the open-file limit leaves room for")
struct OpenFilesTests {
    @Test func keepsAQuarterBackUpTo1024() {
        // This project's machines: 20,000, of which 18,976 go to sessions (18,000 are tested).
        #expect(OpenFiles.sessions(allowedBy: 20_000) == 18_976)
        #expect(OpenFiles.sessions(allowedBy: 65_536) == 64_512)
        // systemd's default soft limit, and small ones.
        #expect(OpenFiles.sessions(allowedBy: 1_024) == 768)
        #expect(OpenFiles.sessions(allowedBy: 300) == 225)
        #expect(OpenFiles.sessions(allowedBy: 1) == 1)
    }
}
