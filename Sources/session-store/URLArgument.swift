import ArgumentParser
import SessionStore

/// Parses a configuration URL during validation, so a bad URL or option is a usage error
/// (exit code 2) whose message never contains the password.
func validatedTarget(_ text: String, role: String = "URL") throws -> StoreTarget {
    do {
        return try StoreTarget(text)
    } catch let error as SessionStoreError where error.code == .invalidConfiguration {
        throw ValidationError("invalid \(role): \(error.message)")
    }
}
