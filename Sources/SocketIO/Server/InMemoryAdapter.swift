import DequeModule
import EngineIO
import NIOCore
import Synchronization

/// The adapter of a single node: room tables in memory and, when recovery is on, a log of
/// recent broadcasts with their offsets and the sessions of recently disconnected sockets.
public final class InMemoryAdapter: Adapter {
    /// A socket's own room, named by its id, is implied by its entry in `sids` and kept in
    /// neither table: a set per socket for a room of one would be most of the tables' memory.
    /// For the same reason the sets are ``SmallSet``s, which keep one element inline.
    private struct Tables {
        /// room → members (own rooms apart)
        var rooms: [String: SmallSet] = [:]
        /// socket → the rooms it joined besides its own
        var sids: [String: SmallSet] = [:]
        /// room → its members as local recipients, made by the room's first broadcast since its
        /// members last changed: a chat room's messages then skip looking up each member by id.
        var resolved: [String: LocalRecipients] = [:]

        mutating func add(_ id: String, to rooms: Set<String>) {
            if sids[id] == nil { sids[id] = SmallSet() }
            for room in rooms where room != id {
                sids[id]?.insert(room)
                self.rooms[room, default: SmallSet()].insert(id)
                resolved[room] = nil
            }
        }

        mutating func remove(_ id: String, from room: String) {
            guard room != id, sids[id]?.remove(room) == true, var members = rooms[room] else { return }
            members.remove(id)
            rooms[room] = members.isEmpty ? nil : members
            resolved[room] = nil
        }
    }

    private struct StoredPacket {
        let offset: String
        let options: BroadcastOptions
        let encoded: [EnginePacket]
        let time: NIODeadline
    }

    private struct RecoveryLog {
        var packets: Deque<StoredPacket> = []
        var sessions: [String: (session: PersistedSession, disconnectedAt: NIODeadline)] = [:]
        var nextOffset: UInt64 = 0
    }

    private let tables = Mutex(Tables())
    private let log = Mutex(RecoveryLog())
    private let sockets: any LocalSocketDirectory
    private let namespace: String
    private let recovery: ConnectionStateRecovery?
    private let offsetPrefix = SessionID.make().prefix(6)

    /// An adapter delivering to `sockets`, the local sockets of `namespace`.
    public init(namespace: String, sockets: any LocalSocketDirectory, recovery: ConnectionStateRecovery?) {
        self.namespace = namespace
        self.sockets = sockets
        self.recovery = recovery
    }

    public func addAll(_ id: String, rooms: Set<String>) {
        tables.withLock { $0.add(id, to: rooms) }
    }

    /// Removes `id` from `room`. A socket stays in its own room while it is in the namespace.
    public func remove(_ id: String, from room: String) {
        tables.withLock { $0.remove(id, from: room) }
    }

    public func removeAll(_ id: String) {
        tables.withLock { tables in
            guard let rooms = tables.sids[id] else { return }
            for room in rooms { tables.remove(id, from: room) }
            tables.sids[id] = nil
        }
    }

    public func rooms(of id: String) -> Set<String> {
        tables.withLock { tables in tables.sids[id].map { $0.set.union([id]) } ?? [] }
    }

    public func roomSizes() -> [String: Int] {
        tables.withLock { tables in
            var sizes = tables.rooms.mapValues(\.count)
            for id in tables.sids.keys { sizes[id, default: 0] += 1 }
            return sizes
        }
    }

    public func socketIDs(_ options: BroadcastOptions) -> Set<String> {
        tables.withLock { Self.select(options, in: $0) }
    }

    private static func select(_ options: BroadcastOptions, in tables: Tables) -> Set<String> {
        var ids: Set<String>
        if options.rooms.isEmpty {
            ids = Set(tables.sids.keys)
        } else if options.rooms.count == 1, let room = options.rooms.first {
            // The common case, a broadcast to one room: its member set as it is (shared, not
            // rebuilt id by id; it is copied only if changed below).
            ids = tables.rooms[room]?.set ?? []
            if tables.sids[room] != nil { ids.insert(room) }
        } else {
            ids = []
            for room in options.rooms {
                if let members = tables.rooms[room] { ids.formUnion(members.set) }
                if tables.sids[room] != nil { ids.insert(room) }
            }
        }
        for room in options.except {
            if let members = tables.rooms[room] { ids.subtract(members.set) }
            if tables.sids[room] != nil { ids.remove(room) }
        }
        return ids
    }

    /// The local recipients `options` selects. Those of a single room are kept until its members
    /// change; they are resolved under the tables' lock so that no change slips in between.
    private func recipients(_ options: BroadcastOptions) -> LocalRecipients {
        let kept = tables.withLock { tables -> LocalRecipients? in
            guard options.rooms.count == 1, options.except.isEmpty, let room = options.rooms.first,
                tables.sids[room] == nil
            else { return nil }
            if let known = tables.resolved[room] { return known }
            guard let members = tables.rooms[room] else { return LocalRecipients() }
            let found = sockets.recipients(members)
            tables.resolved[room] = found
            return found
        }
        return kept ?? sockets.recipients(socketIDs(options))
    }

    /// A broadcast to rooms none of which has a member reaches nobody, unless recovery keeps it
    /// for sessions that may come back.
    public func mayReach(_ options: BroadcastOptions) -> Bool {
        guard recovery == nil, !options.rooms.isEmpty else { return true }
        return tables.withLock { tables in options.rooms.contains { tables.rooms[$0] != nil || tables.sids[$0] != nil } }
    }

    public func broadcast(_ packet: SocketIOPacket, options: BroadcastOptions) {
        var packet = packet
        let reached = recipients(options)
        // Nobody to reach and nothing to keep for recovery: nothing to encode.
        if reached.isEmpty, recovery == nil { return }
        if let recovery, !options.volatile, packet.id == nil, packet.kind == .event {
            let now = NIODeadline.now()
            let encoded = log.withLock { log -> [EnginePacket] in
                let offset = "\(offsetPrefix)-\(log.nextOffset)"
                log.nextOffset += 1
                if case .array(var values)? = packet.data {
                    values.append(.string(offset))
                    packet.data = .array(values)
                }
                let encoded = packet.encode()
                log.packets.append(StoredPacket(offset: offset, options: options, encoded: encoded, time: now))
                let horizon = now - recovery.maxDisconnectionDuration
                while let first = log.packets.first, first.time < horizon { log.packets.removeFirst() }
                return encoded
            }
            sockets.deliver(encoded, to: reached, volatile: options.volatile)
        } else if !reached.isEmpty {
            sockets.deliver(packet.encode(), to: reached, volatile: options.volatile)
        }
    }

    public func addSockets(_ options: BroadcastOptions, rooms: Set<String>) {
        tables.withLock { tables in
            for id in Self.select(options, in: tables) { tables.add(id, to: rooms) }
        }
    }

    public func removeSockets(_ options: BroadcastOptions, rooms: Set<String>) {
        tables.withLock { tables in
            for id in Self.select(options, in: tables) {
                for room in rooms { tables.remove(id, from: room) }
            }
        }
    }

    public func disconnectSockets(_ options: BroadcastOptions, close: Bool) {
        sockets.disconnect(socketIDs(options), close: close)
    }

    public func persistSession(_ session: PersistedSession) {
        guard let recovery else { return }
        let now = NIODeadline.now()
        log.withLock { log in
            let horizon = now - recovery.maxDisconnectionDuration
            log.sessions = log.sessions.filter { $0.value.disconnectedAt >= horizon }
            log.sessions[session.pid] = (session, now)
        }
    }

    public func restoreSession(pid: String, offset: String) -> RecoveredSession? {
        guard let recovery else { return nil }
        let now = NIODeadline.now()
        return log.withLock { log -> RecoveredSession? in
            guard let kept = log.sessions.removeValue(forKey: pid) else { return nil }
            guard kept.disconnectedAt >= now - recovery.maxDisconnectionDuration else { return nil }
            guard let index = log.packets.firstIndex(where: { $0.offset == offset }) else { return nil }
            var missed: [[EnginePacket]] = []
            let rooms = kept.session.rooms
            for stored in log.packets[(index + 1)...] {
                let included = (stored.options.rooms.isEmpty || !stored.options.rooms.isDisjoint(with: rooms))
                    && stored.options.except.isDisjoint(with: rooms)
                if included { missed.append(stored.encoded) }
            }
            return RecoveredSession(session: kept.session, missedPackets: missed)
        }
    }
}
