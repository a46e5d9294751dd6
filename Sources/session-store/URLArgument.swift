import ArgumentParser
import SessionStoreCore

/// Parses a configuration URL during validation, so a bad URL or option is a usage error
/// (exit code 2) whose message never contains the password.
func validatedTarget(_ text: String, role: String = "URL") throws -> StoreTarget {
    do {
        return try StoreTarget(text)
    } catch let error as SessionStoreError where error.code == .invalidConfiguration {
        throw ValidationError("invalid \(role): \(error.message)")
    }
}

/// The key ring a command uses: the file of `--keys` when given, else the one the URL's
/// `encryption_keys=` names, else none. A key file is read as apps read it (refused when
/// other users may read it).
/// - Throws: ``ValidationError`` (exit code 2) for a bad key file.
func keyRing(file: String?, target: StoreTarget) throws -> EncryptionKeyRing? {
    guard let file else { return target.keys }
    do {
        return try EncryptionKeyRing(contentsOfFile: file)
    } catch let error as SessionStoreError where error.code == .invalidConfiguration {
        throw ValidationError("invalid --keys: \(error.message)")
    }
}
