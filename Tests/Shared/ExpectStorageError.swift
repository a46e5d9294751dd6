// Shared by the MySQL and PostgreSQL test targets (a symbolic link in each).
import SessionStoreCore
import Testing

/// Expects `body` to throw a ``StorageError`` of `kind` and returns it.
@discardableResult
func expectStorageError<T>(
    _ kind: StorageError.Kind, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> T
) async -> StorageError? {
    do {
        _ = try await body()
        Issue.record("expected StorageError \(kind), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as StorageError {
        #expect(error.kind == kind, "expected \(kind), got \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected StorageError \(kind), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
