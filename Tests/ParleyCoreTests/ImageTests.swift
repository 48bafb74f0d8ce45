import Foundation
import ParleyCore
import Testing

let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + Data(repeating: 7, count: 100)
let jpeg = Data([0xFF, 0xD8, 0xFF, 0xE0]) + Data(repeating: 1, count: 50)
let gif = Data("GIF89a".utf8) + Data(repeating: 2, count: 20)
let webp = Data("RIFF".utf8) + Data([0, 0, 0, 0]) + Data("WEBPVP8 ".utf8)

@Suite("Images")
struct ImageTests {
    @Test func typesComeFromTheBytes() throws {
        #expect(try MessageImage.validated(png, limit: 1000).type == "image/png")
        #expect(try MessageImage.validated(jpeg, limit: 1000).type == "image/jpeg")
        #expect(try MessageImage.validated(gif, limit: 1000).type == "image/gif")
        #expect(try MessageImage.validated(webp, limit: 1000).type == "image/webp")
        for bad in [Data(), Data("<svg/>".utf8), Data("GIF90a".utf8), Data("RIFF0000WAVE".utf8), Data([0x89, 0x50])] {
            let error = #expect(throws: ChatError.self) { try MessageImage.validated(bad, limit: 1000) }
            #expect(error?.code == .unsupportedImage)
        }
        let big = #expect(throws: ChatError.self) { try MessageImage.validated(png, limit: 50) }
        #expect(big?.code == .imageTooLarge)
    }

    @Test(arguments: StoreKind.allCases)
    func storedImagesAreServedToMembersOnly(kind: StoreKind) async throws {
        let (service, sink, store) = try await makeService(kind)
        let ada = try await service.register(handle: "ada", password: "long enough").identity
        let outsider = try service.guest(name: "out")
        _ = try await service.join("pics", as: ada, on: .c("ada"))
        sink.clear()
        let message = try await service.send("", image: png, to: "pics", clientID: nil, from: ada, on: .c("ada"))
        #expect(message.image == MessageImage(type: "image/png", size: png.count, data: nil))
        #expect(sink.published == [.message(message)], "the event carries the type and size, not the bytes")
        #expect(try await service.history(of: "pics", before: nil, limit: 1, for: ada, on: .c("ada")).messages.first?.image?.type == "image/png")
        #expect(try await service.image(ofMessage: message.id, for: ada, on: .c("ada")).data == png)
        let refused = await #expect(throws: ChatError.self) { try await service.image(ofMessage: message.id, for: outsider, on: .c("out")) }
        #expect(refused?.code == .notFound)
        let missing = await #expect(throws: ChatError.self) { try await service.image(ofMessage: 987_654, for: ada, on: .c("ada")) }
        #expect(missing == refused)
        // A text-only message has no image to fetch.
        let text = try await service.send("words", to: "pics", clientID: nil, from: ada, on: .c("ada"))
        await #expect(throws: ChatError.self) { try await service.image(ofMessage: text.id, for: ada, on: .c("ada")) }
        // Clearing the room deletes the image with its message.
        try await service.clearHistory(of: "pics", by: ada)
        #expect(try await store.image(ofMessage: message.id) == nil)
    }

    @Test func ephemeralMessagesCarryTheirImageInline() async throws {
        let (service, sink, _) = try await makeService()
        let guest = try service.guest(name: "g")
        _ = try await service.join("live", as: guest, on: .c("g"))
        try await service.setRetention(.none, ofRoom: "live", by: guest)
        sink.clear()
        let message = try await service.send("look", image: gif, to: "live", clientID: nil, from: guest, on: .c("g"))
        #expect(message.image?.data == gif)
        #expect(sink.published == [.message(message)])
    }
}
