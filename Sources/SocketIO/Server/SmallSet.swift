/// A set of strings that keeps a single element inline. Most of what an adapter's tables hold
/// is small: a socket is in one or two rooms besides its own, and rooms such as one account's
/// are often of one socket. A `Set` of one element is an allocation of about a hundred bytes
/// per socket; this is none.
struct SmallSet: Sequence, Equatable {
    private enum Storage: Equatable {
        case empty
        case one(String)
        case many(Set<String>)
    }

    private var storage: Storage = .empty

    init() {}

    var isEmpty: Bool {
        if case .empty = storage { return true }
        return false
    }

    var count: Int {
        switch storage {
        case .empty: 0
        case .one: 1
        case .many(let set): set.count
        }
    }

    func contains(_ element: String) -> Bool {
        switch storage {
        case .empty: false
        case .one(let only): only == element
        case .many(let set): set.contains(element)
        }
    }

    /// Adds `element`; returns whether it was not there.
    @discardableResult
    mutating func insert(_ element: String) -> Bool {
        switch storage {
        case .empty:
            storage = .one(element)
            return true
        case .one(let only):
            guard only != element else { return false }
            storage = .many([only, element])
            return true
        case .many(var set):
            storage = .empty
            let inserted = set.insert(element).inserted
            storage = .many(set)
            return inserted
        }
    }

    /// Removes `element`; returns whether it was there.
    @discardableResult
    mutating func remove(_ element: String) -> Bool {
        switch storage {
        case .empty:
            return false
        case .one(let only):
            guard only == element else { return false }
            storage = .empty
            return true
        case .many(var set):
            storage = .empty
            let removed = set.remove(element) != nil
            storage = set.count == 1 ? .one(set.first!) : .many(set)
            return removed
        }
    }

    /// The elements as a `Set`.
    var set: Set<String> {
        switch storage {
        case .empty: []
        case .one(let only): [only]
        case .many(let set): set
        }
    }

    /// Iterates without copying: the inline element as it is, a many-element set through its
    /// own iterator.
    struct Iterator: IteratorProtocol {
        fileprivate enum State {
            case done
            case one(String)
            case many(Set<String>.Iterator)
        }

        fileprivate var state: State

        mutating func next() -> String? {
            switch state {
            case .done:
                return nil
            case .one(let only):
                state = .done
                return only
            case .many(var iterator):
                state = .done
                guard let element = iterator.next() else { return nil }
                state = .many(iterator)
                return element
            }
        }
    }

    func makeIterator() -> Iterator {
        switch storage {
        case .empty: Iterator(state: .done)
        case .one(let only): Iterator(state: .one(only))
        case .many(let set): Iterator(state: .many(set.makeIterator()))
        }
    }
}
