import SessionStoreCore

/// Sessions that belong to users: binding, per-session lifetimes, listing, revoking, the
/// cap per owner, and revocation racing a request in flight.
enum OwnerChecks {
    static let all: [ConformanceCheck] = binding + lifetimes + listing + revoking + badInput

    static let binding: [ConformanceCheck] = [
        check("logging in renews the id and binds the owner and device facts in one write") { database in
            try await withFixture(database) { fixture in
                let anonymous = try await fixture.stored(["cart": "3 items"])
                var session = try await fixture.store.load(anonymous.id)
                fixture.backend.reset()
                let device = SessionDevice(ipAddress: "203.0.113.7", userAgent: "Firefox/140", label: "laptop")
                try await fixture.store.logIn(&session, owner: "user-42", device: device)
                try await expect(session.id != anonymous.id && session.owner == "user-42", "new id, bound")
                try await expect(fixture.backend.calls["insert"] == 1, "the new id is inserted bound: \(fixture.backend.calls)")
                try await expect(fixture.backend.calls["rebind"] == nil, "no second write binds it afterwards")
                let loaded = try await fixture.store.load(session.id)
                try await expect(loaded.owner == "user-42" && loaded.device == device, "owner and facts read back")
                try await expect(try loaded.get("cart", as: String.self) == "3 items", "attributes kept")
                try await expect(!(try await fixture.store.load(anonymous.id).isStored), "the anonymous id is dead")
            }
        },
        check("logging in a session that was never stored stores it bound") { database in
            try await withFixture(database) { fixture in
                var session = fixture.store.newSession()
                try await fixture.store.logIn(&session, owner: "user-1")
                try await expect(session.isStored && session.owner == "user-1", "stored and bound without attributes")
                let loaded = try await fixture.store.load(session.id)
                try await expect(loaded.isStored && loaded.isEmpty && loaded.owner == "user-1", "a bound session without data is kept")
            }
        },
        check("read-only requests on a bound session write nothing") { database in
            try await withFixture(database) { fixture in
                var session = fixture.store.newSession()
                try session.set("theme", "dark")
                try await fixture.store.logIn(&session, owner: "user-1", device: SessionDevice(label: "phone"))
                fixture.backend.reset()
                for _ in 0..<20 {
                    var loaded = try await fixture.store.load(session.id)
                    _ = try loaded.get("theme", as: String.self)
                    try await expect(try await fixture.store.save(&loaded) == .skipped, "unchanged save skipped")
                }
                try await expect(fixture.backend.writes == 0, "no writes: \(fixture.backend.calls)")
            }
        },
        check("saving a bound session keeps its owner, and an emptied one stays stored") { database in
            try await withFixture(database) { fixture in
                var session = fixture.store.newSession()
                try session.set("a", 1)
                try await fixture.store.logIn(&session, owner: "user-1")
                var loaded = try await fixture.store.load(session.id)
                loaded.remove("a")
                try await expect(try await fixture.store.save(&loaded) == .updated, "an emptied bound session is rewritten, not deleted")
                let again = try await fixture.store.load(session.id)
                try await expect(again.isStored && again.owner == "user-1" && again.isEmpty, "still signed in")
            }
        },
        check("regenerating a bound session keeps its owner, device and lifetime") { database in
            try await withFixture(database) { fixture in
                var session = fixture.store.newSession()
                let lifetime = SessionLifetime(idleTimeout: .seconds(30 * 86_400))
                try await fixture.store.logIn(&session, owner: "u", device: SessionDevice(label: "tablet"), lifetime: lifetime)
                try await fixture.store.regenerateID(&session)
                let loaded = try await fixture.store.load(session.id)
                try await expect(loaded.owner == "u" && loaded.device.label == "tablet", "owner and device moved")
                try await expect(loaded.lifetime == lifetime, "lifetime moved: \(String(describing: loaded.lifetime))")
            }
        },
        check("unbinding removes the owner and keeps the attributes") { database in
            try await withFixture(database) { fixture in
                var session = fixture.store.newSession()
                try session.set("theme", "dark")
                try await fixture.store.logIn(&session, owner: "user-1")
                var loaded = try await fixture.store.load(session.id)
                try await expect(try await fixture.store.unbind(&loaded), "unbound")
                let again = try await fixture.store.load(session.id)
                try await expect(again.owner == nil && (try again.get("theme", as: String.self)) == "dark", "anonymous again, data kept")
                let page = try await fixture.store.sessions(ownedBy: "user-1")
                try await expect(page.sessions.isEmpty, "no longer listed")
            }
        },
        check("binding keeps the pending changes and those of requests that saved meanwhile") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["a": "1"])
                var session = try await fixture.store.load(saved.id)
                var other = try await fixture.store.load(saved.id)
                try other.set("b", "2")
                try await fixture.store.save(&other)
                try session.set("c", "3")
                try await expect(try await fixture.store.bind(&session, to: "user-1"), "bound")
                let loaded = try await fixture.store.load(saved.id)
                try await expect(loaded.owner == "user-1", "bound in place")
                for (key, value) in [("a", "1"), ("b", "2"), ("c", "3")] {
                    try await expect(try loaded.get(key, as: String.self) == value, "\(key) kept")
                }
            }
        },
    ]

    static let lifetimes: [ConformanceCheck] = [
        check("a remember-me session outlives the store's idle timeout and slides on use") { database in
            try await withFixture(database) { fixture in
                var remembered = fixture.store.newSession()
                try await fixture.store.logIn(&remembered, owner: "u", lifetime: SessionLifetime(idleTimeout: .seconds(30 * 86_400)))
                var ordinary = fixture.store.newSession()
                try await fixture.store.logIn(&ordinary, owner: "u")
                fixture.clock.advance(by: .seconds(3600))
                try await expect(!(try await fixture.store.load(ordinary.id).isStored), "the ordinary session idled out at 30 minutes")
                let loaded = try await fixture.store.load(remembered.id)
                try await expect(loaded.isStored && loaded.touchedOnLoad, "remembered one alive and extended")
                try await expect(loaded.expiresAt == fixture.clock.now() + 30 * 86_400_000, "extended by its own idle timeout")
                fixture.clock.advance(by: .seconds(29 * 86_400))
                try await expect(try await fixture.store.load(remembered.id).isStored, "alive 29 days after its last use")
            }
        },
        check("a kiosk session's short lifetime ends it early, and cleanup deletes it") { database in
            try await withFixture(database) { fixture in
                var kiosk = fixture.store.newSession()
                try kiosk.set("k", 1)
                try await fixture.store.logIn(&kiosk, owner: "u", lifetime: SessionLifetime(idleTimeout: .seconds(300), persistentCookie: false))
                try await expect(fixture.store.cookieMaxAge(for: kiosk) == nil, "a session cookie when not persistent")
                fixture.clock.advance(by: .seconds(301))
                try await expect(!(try await fixture.store.load(kiosk.id).isStored), "expired after 5 minutes")
                let deleted = try await fixture.store.cleanup()
                try await expect(deleted == 1, "cleanup deleted it: \(deleted)")
            }
        },
        check("an absolute lifetime of its own ends a session however active") { database in
            try await withFixture(database) { fixture in
                var session = fixture.store.newSession()
                try await fixture.store.logIn(&session, owner: "u", lifetime: SessionLifetime(idleTimeout: .seconds(3600), absoluteLifetime: .seconds(7200)))
                for _ in 0..<4 {
                    fixture.clock.advance(by: .seconds(1700))
                    try await expect(try await fixture.store.load(session.id).isStored, "alive while used")
                }
                fixture.clock.advance(by: .seconds(400))
                try await expect(!(try await fixture.store.load(session.id).isStored), "gone after 2 hours")
            }
        },
        check("a persistent cookie's Max-Age follows the session's expiry") { database in
            try await withFixture(database) { fixture in
                var session = fixture.store.newSession()
                try await fixture.store.logIn(&session, owner: "u", lifetime: SessionLifetime(idleTimeout: .seconds(86_400)))
                try await expect(fixture.store.cookieMaxAge(for: session) == 86_400, "Max-Age of a day")
                var plain = fixture.store.newSession()
                try await fixture.store.logIn(&plain, owner: "u")
                try await expect(fixture.store.cookieMaxAge(for: plain) == nil, "a session cookie without a lifetime")
            }
        },
        check("setting and clearing a lifetime keeps the owner") { database in
            try await withFixture(database) { fixture in
                var session = fixture.store.newSession()
                try await fixture.store.logIn(&session, owner: "u")
                try await expect(try await fixture.store.setLifetime(&session, SessionLifetime(idleTimeout: .seconds(7 * 86_400))), "set")
                var loaded = try await fixture.store.load(session.id)
                try await expect(loaded.owner == "u" && loaded.lifetime?.idleTimeout == .seconds(7 * 86_400), "lifetime set, owner kept")
                try await expect(try await fixture.store.setLifetime(&loaded, nil), "cleared")
                let again = try await fixture.store.load(session.id)
                try await expect(again.lifetime == nil && again.expiresAt == fixture.clock.now() + 1_800_000, "the store's lifetime again")
            }
        },
    ]

    static let listing: [ConformanceCheck] = [
        check("an owner's sessions list newest first with facts, the current one marked, and no cookie in them") { database in
            try await withFixture(database) { fixture in
                var ids: [SessionID] = []
                for index in 0..<3 {
                    var session = fixture.store.newSession()
                    try await fixture.store.logIn(&session, owner: "user-7", device: SessionDevice(userAgent: "agent-\(index)"))
                    ids.append(session.id)
                    fixture.clock.advance(by: .seconds(1))
                }
                var stranger = fixture.store.newSession()
                try await fixture.store.logIn(&stranger, owner: "user-8")
                let current = try await fixture.store.load(ids[1])
                let page = try await fixture.store.sessions(ownedBy: "user-7", current: current)
                try await expect(page.sessions.map(\.device.userAgent) == ["agent-2", "agent-1", "agent-0"], "newest first: \(page.sessions)")
                try await expect(page.sessions.map(\.isCurrent) == [false, true, false], "the current one marked")
                try await expect(page.nextCursor == nil, "one page")
                for (listed, id) in zip(page.sessions, ids.reversed()) {
                    try await expect(!listed.handle.contains(id.text), "a handle is never the id")
                    try await expect(SessionID(validating: listed.handle) == nil, "a handle is no valid id")
                    try await expect(!(try await fixture.store.load(id: listed.handle).isStored), "a handle does not load a session")
                }
            }
        },
        check("listing pages through many sessions with a cursor, each once") { database in
            try await withFixture(database) { fixture in
                var created: Set<String> = []
                for index in 0..<25 {
                    var session = fixture.store.newSession()
                    try await fixture.store.logIn(&session, owner: "many", device: SessionDevice(label: "d\(index)"))
                    created.insert("d\(index)")
                    if index % 3 == 0 { fixture.clock.advance(by: .milliseconds(1)) } // ties in created time too
                }
                var seen: [String] = []
                var cursor: String?
                var pages = 0
                repeat {
                    let page = try await fixture.store.sessions(ownedBy: "many", after: cursor, limit: 7)
                    seen += page.sessions.compactMap(\.device.label)
                    cursor = page.nextCursor
                    pages += 1
                } while cursor != nil && pages < 10
                try await expect(seen.count == 25 && Set(seen) == created, "every session once: \(seen.count) seen")
                try await expect(pages == 4, "4 pages of at most 7, got \(pages)")
            }
        },
        check("expired and retired sessions are not listed") { database in
            try await withFixture(database, configure: { $0.regenerationGracePeriod = .seconds(5) }) { fixture in
                var session = fixture.store.newSession()
                try await fixture.store.logIn(&session, owner: "u")
                try await fixture.store.regenerateID(&session) // the old id is retired for 5 s
                var short = fixture.store.newSession()
                try await fixture.store.logIn(&short, owner: "u", lifetime: SessionLifetime(idleTimeout: .seconds(120)))
                try await expect(try await fixture.store.sessions(ownedBy: "u").sessions.count == 2, "the retired copy is not listed")
                fixture.clock.advance(by: .seconds(121))
                let page = try await fixture.store.sessions(ownedBy: "u")
                try await expect(page.sessions.count == 1, "the expired one is not listed: \(page.sessions.count)")
            }
        },
    ]

    static let revoking: [ConformanceCheck] = [
        check("revoking by handle ends that session only, and a request in flight on it gets gone") { database in
            try await withFixture(database) { fixture in
                var phone = fixture.store.newSession()
                try phone.set("x", 1)
                try await fixture.store.logIn(&phone, owner: "u")
                var laptop = fixture.store.newSession()
                try await fixture.store.logIn(&laptop, owner: "u")
                var inFlight = try await fixture.store.load(phone.id) // a request on the phone, mid-way
                let page = try await fixture.store.sessions(ownedBy: "u", current: laptop)
                guard let handle = page.sessions.first(where: { !$0.isCurrent })?.handle else {
                    throw ConformanceFailure(message: "the phone is listed", location: #fileID)
                }
                try await expect(try await fixture.store.revoke(handle: handle, ownedBy: "someone-else") == 0, "another owner's handle ends nothing")
                try await expect(try await fixture.store.revoke(handle: handle, ownedBy: "u") == 1, "one session ended")
                try inFlight.set("late", true)
                try await expect(try await fixture.store.save(&inFlight) == .gone, "the in-flight save is refused")
                try await expect(!(try await fixture.store.load(phone.id).isStored), "the phone stays signed out")
                try await expect(try await fixture.store.load(laptop.id).isStored, "the laptop is untouched")
                var modified = try await fixture.store.load(phone.id)
                try await expect(!modified.isStored, "no row came back")
                try await fixture.store.modify(&modified) { try $0.set("y", 1) }
                try await expect(!(try await fixture.store.load(phone.id).isStored), "no resurrection by id")
            }
        },
        check("revoking all but the current session ends the others, old ids included") { database in
            try await withFixture(database, configure: { $0.regenerationGracePeriod = .seconds(5) }) { fixture in
                var current = fixture.store.newSession()
                try await fixture.store.logIn(&current, owner: "u")
                var others: [SessionID] = []
                for _ in 0..<3 {
                    var other = fixture.store.newSession()
                    try other.set("a", 1)
                    try await fixture.store.logIn(&other, owner: "u")
                    let signedIn = other.id
                    try await fixture.store.regenerateID(&other) // signedIn stays readable for the grace period
                    others += [other.id, signedIn]
                }
                var bystander = fixture.store.newSession()
                try await fixture.store.logIn(&bystander, owner: "v")
                let ended = try await fixture.store.revokeOthers(ownedBy: "u", keeping: current)
                try await expect(ended == 6, "3 sessions and their 3 ids in grace ended, got \(ended)")
                for id in others {
                    try await expect(!(try await fixture.store.load(id).isStored), "every other session and old id is dead")
                }
                try await expect(try await fixture.store.load(current.id).isStored, "the current one lives")
                try await expect(try await fixture.store.load(bystander.id).isStored, "another owner's session lives")
            }
        },
        check("revoking all of an owner's sessions works in batches") { database in
            try await withFixture(database, configure: { $0.cleanupBatchSize = 4 }) { fixture in
                var ids: [SessionID] = []
                for _ in 0..<10 {
                    var session = fixture.store.newSession()
                    try await fixture.store.logIn(&session, owner: "u")
                    ids.append(session.id)
                }
                fixture.backend.reset()
                try await expect(try await fixture.store.revokeAll(ownedBy: "u") == 10, "all ten ended")
                try await expect(fixture.backend.calls["deleteOwned"] == 3, "in batches of 4: \(fixture.backend.calls)")
                for id in ids { try await expect(!(try await fixture.store.load(id).isStored), "signed out") }
                try await expect(try await fixture.store.sessions(ownedBy: "u").sessions.isEmpty, "none listed")
            }
        },
        check("the cap per owner ends the least recently used sessions at login") { database in
            try await withFixture(database, configure: { $0.maxSessionsPerOwner = 2 }) { fixture in
                var sessions: [Session] = []
                for _ in 0..<2 {
                    var session = fixture.store.newSession()
                    try await fixture.store.logIn(&session, owner: "u")
                    sessions.append(session)
                    fixture.clock.advance(by: .seconds(90))
                }
                // The first one is used again (a touch), so the second is now the least recent.
                try await expect(try await fixture.store.load(sessions[0].id).touchedOnLoad, "first one touched")
                fixture.clock.advance(by: .seconds(90))
                var third = fixture.store.newSession()
                try await fixture.store.logIn(&third, owner: "u")
                try await expect(try await fixture.store.load(sessions[0].id).isStored, "recently used one kept")
                try await expect(!(try await fixture.store.load(sessions[1].id).isStored), "least recently used one ended")
                try await expect(try await fixture.store.load(third.id).isStored, "the new one kept")
                try await expect(try await fixture.store.sessions(ownedBy: "u").sessions.count == 2, "at the cap")
            }
        },
        check("two logins of one owner racing past the cap leave exactly the cap") { database in
            let clock = ManualClock()
            let first = try await Fixture(database, clock: clock, configure: { $0.maxSessionsPerOwner = 1 })
            let second = try await Fixture(database, clock: clock, configure: { $0.maxSessionsPerOwner = 1 })
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for fixture in [first, second] {
                        group.addTask {
                            for _ in 0..<5 {
                                var session = fixture.store.newSession()
                                try await fixture.store.logIn(&session, owner: "racer")
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let live = try await first.store.sessions(ownedBy: "racer").sessions.count
                try await expect(live == 1, "exactly one session left, got \(live)")
            } catch {
                try await first.close()
                try await second.close()
                throw error
            }
            try await first.close()
            try await second.close()
        },
    ]

    static let badInput: [ConformanceCheck] = [
        check("bad owners, facts, lifetimes, handles and cursors are typed errors that write nothing") { database in
            try await withFixture(database) { fixture in
                let saved = try await fixture.stored(["a": "1"])
                var session = try await fixture.store.load(saved.id)
                fixture.backend.reset()
                let owners = ["", String(repeating: "x", count: 256), "a\u{0}b"]
                for owner in owners {
                    try await expectThrows("owner of \(owner.utf8.count) bytes", { try await fixture.store.logIn(&session, owner: owner) },
                                           where: { ($0 as? SessionStoreError)?.code == .invalidOwner })
                }
                try await expectThrows("an oversized user agent", {
                    try await fixture.store.logIn(&session, owner: "u", device: SessionDevice(userAgent: String(repeating: "u", count: 513)))
                }, where: { ($0 as? SessionStoreError)?.code == .invalidOwner })
                try await expectThrows("a lifetime over the maximum", {
                    try await fixture.store.logIn(&session, owner: "u", lifetime: SessionLifetime(idleTimeout: .seconds(500 * 86_400)))
                }, where: { ($0 as? SessionStoreError)?.code == .invalidOwner })
                try await expect(fixture.backend.writes == 0, "nothing written: \(fixture.backend.calls)")
                for handle in ["", "h1.", "h1.short", saved.id.text, "h1." + String(repeating: "!", count: 43), "x1." + String(repeating: "a", count: 43)] {
                    try await expectThrows("handle \(handle.count) characters", { try await fixture.store.revoke(handle: handle, ownedBy: "u") },
                                           where: { ($0 as? SessionStoreError)?.code == .invalidHandle })
                }
                for cursor in ["", "c1.", "c1.12", "c1.-5." + String(repeating: "a", count: 43), "c1.99999999999999999999." + String(repeating: "a", count: 43)] {
                    try await expectThrows("cursor \(cursor)", { try await fixture.store.sessions(ownedBy: "u", after: cursor) },
                                           where: { ($0 as? SessionStoreError)?.code == .invalidHandle })
                }
                try await expect(try await fixture.store.load(saved.id).isStored, "the session is untouched")
            }
        },
    ]
}
