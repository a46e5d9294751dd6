#if Vapor
import SessionStoreCore
import Testing
import Vapor

/// An app that imports Vapor and this package names each package's `Session` and `SessionID`
/// by its module, without aliases: `SessionStoreCore.Session` beside `Vapor.Session`.
@Suite("Names in an app that imports Vapor")
struct NamesTests {
    @Test func eachSessionTypeIsNamedByItsModule() async throws {
        let store = try SessionStore(backend: InMemoryBackend())
        var stored: SessionStoreCore.Session = store.newSession()
        try stored.set("user", "ada")
        #expect(try await store.save(&stored) == .created)
        let storedID: SessionStoreCore.SessionID = stored.id
        #expect(SessionStoreCore.SessionID(validating: storedID.text) == storedID)

        let vapors = Vapor.Session(id: Vapor.SessionID(string: "framework-id"), data: SessionData(initialData: ["user": "ada"]))
        #expect(vapors.id?.string == "framework-id")
        #expect(vapors.data["user"] == "ada")
    }
}
#endif
