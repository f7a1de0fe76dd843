import Testing

@testable import DTLSProxy

@Suite("Session-ticket keys: derivation, rotation, ticket_key_file")
struct TicketKeyScheduleTests {
    let secret = Array(repeating: UInt8(7), count: 32)

    @Test func keysAreDerivedFromSecretAndPeriodOnly() {
        let a = TicketKeySchedule(secret: secret, rotation: .hours(1))
        let b = TicketKeySchedule(secret: secret, rotation: .hours(1))
        let other = TicketKeySchedule(secret: Array(repeating: 8, count: 32), rotation: .hours(1))
        #expect(a.key(for: 5) == b.key(for: 5))
        #expect(a.key(for: 5) != a.key(for: 6))
        #expect(a.key(for: 5).name != other.key(for: 5).name)
        let key = a.key(for: 5)
        #expect(key.name.count == 16 && key.cipherKey.count == 32 && key.macKey.count == 32)
        #expect(key.cipherKey != key.macKey)
    }

    @Test func periodsFollowTheWallClock() {
        let schedule = TicketKeySchedule(secret: secret, rotation: .minutes(10))
        #expect(schedule.periodSeconds == 600)
        #expect(schedule.period(at: 0) == 0 && schedule.period(at: 599) == 0 && schedule.period(at: 600) == 1)
        #expect(schedule.encryptionKey(at: 1_200) == schedule.key(for: 2))
        #expect(schedule.sessionLifetimeSeconds == 1_200)
    }

    @Test func previousAndNextKeysStillDecryptButAskForRenewal() throws {
        let schedule = TicketKeySchedule(secret: secret, rotation: .seconds(100))
        let issued = schedule.encryptionKey(at: 1_050)  // period 10
        let same = try #require(schedule.decryptionKey(named: issued.name, at: 1_099))
        #expect(same.key == issued && same.current)
        let later = try #require(schedule.decryptionKey(named: issued.name, at: 1_150))  // period 11
        #expect(later.key == issued && !later.current)
        #expect(schedule.decryptionKey(named: issued.name, at: 1_200) == nil)  // period 12: expired
        // An instance whose clock is a little behind still reads it.
        let behind = try #require(schedule.decryptionKey(named: issued.name, at: 990))  // period 9
        #expect(!behind.current)
        #expect(schedule.decryptionKey(named: Array(repeating: 0, count: 16), at: 1_050) == nil)
    }

    @Test func periodZeroHasNoPreviousKey() throws {
        let schedule = TicketKeySchedule(secret: secret, rotation: .seconds(100))
        let key = schedule.encryptionKey(at: 5)
        #expect(try #require(schedule.decryptionKey(named: key.name, at: 5)).current)
    }

    @Test func ticketKeyFileContentsAreChecked() {
        #expect(TicketKeySchedule.problem(withFileContents: Array(repeating: 1, count: 32), path: "/k") == nil)
        #expect(
            TicketKeySchedule.problem(withFileContents: Array(repeating: 1, count: 31), path: "/k")
                == "/k holds 31 bytes; a ticket key secret needs at least 32 (create one with `openssl rand 48 > /k`)")
        #expect(
            TicketKeySchedule.problem(withFileContents: Array(repeating: 1, count: 4097), path: "/k")?.contains(
                "larger than 4096") == true)
    }
}

@Suite("access_denied in place of the server's last flight")
struct AccessDeniedAlertTests {
    func record(
        type: UInt8, epoch: UInt16, sequence: UInt64, body: [UInt8], version: [UInt8] = [0xFE, 0xFD]
    ) -> [UInt8] {
        var bytes = [type] + version + [UInt8(epoch >> 8), UInt8(epoch & 0xFF)]
        for shift in stride(from: 40, through: 0, by: -8) { bytes.append(UInt8((sequence >> UInt64(shift)) & 0xFF)) }
        return bytes + [UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    @Test func takesTheSequenceNumberOfTheChangeCipherSpecItReplaces() throws {
        let ticket = record(type: 22, epoch: 0, sequence: 6, body: Array(repeating: 1, count: 40))
        let ccs = record(type: 20, epoch: 0, sequence: 7, body: [1])
        let finished = record(type: 22, epoch: 1, sequence: 0, body: Array(repeating: 2, count: 40))
        let alert = try #require(AccessDeniedAlert.replacing(flight: [ticket + ccs, finished]))
        #expect(alert == record(type: 21, epoch: 0, sequence: 7, body: [2, 49]))
    }

    @Test func keepsTheRecordVersionOfDTLS10() throws {
        let hello = record(type: 22, epoch: 0, sequence: 3, body: [0], version: [0xFE, 0xFF])
        let alert = try #require(AccessDeniedAlert.replacing(flight: [hello]))
        #expect(alert == record(type: 21, epoch: 0, sequence: 4, body: [2, 49], version: [0xFE, 0xFF]))
    }

    @Test func noEpochZeroRecordMeansNoPlaintextAlert() {
        #expect(AccessDeniedAlert.replacing(flight: []) == nil)
        #expect(AccessDeniedAlert.replacing(flight: [record(type: 22, epoch: 1, sequence: 0, body: [1, 2])]) == nil)
        #expect(AccessDeniedAlert.replacing(flight: [[0x16, 0xFE]]) == nil)
    }
}
