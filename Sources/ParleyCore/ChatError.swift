/// A refusal of the chat service, with a stable code that clients may rely on and a message
/// for people. The codes are listed in docs/PROTOCOL.md.
public struct ChatError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable machine-readable code.
    public struct Code: RawRepresentable, Sendable, Hashable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// A handle that is not 3–32 letters, digits, `_` or `-`.
        public static let invalidHandle = Code(rawValue: "invalid_handle")
        /// A password that is too short or too long.
        public static let invalidPassword = Code(rawValue: "invalid_password")
        /// The handle belongs to another account.
        public static let handleTaken = Code(rawValue: "handle_taken")
        /// Wrong handle or password.
        public static let badCredentials = Code(rawValue: "bad_credentials")
        /// A missing, forged, expired or revoked token.
        public static let unauthorized = Code(rawValue: "unauthorized")
        /// A guest name that is empty, too long or has control characters.
        public static let invalidName = Code(rawValue: "invalid_name")
        /// A room name that is empty, too long or has characters outside the allowed set.
        public static let invalidRoomName = Code(rawValue: "invalid_room_name")
        /// Someone else with that name is already in the room.
        public static let nameTaken = Code(rawValue: "name_taken")
        /// The user is not a member of that room.
        public static let notMember = Code(rawValue: "not_a_member")
        /// An empty message.
        public static let emptyMessage = Code(rawValue: "empty_message")
        /// A message longer than the limit.
        public static let messageTooLong = Code(rawValue: "message_too_long")
        /// An argument of the wrong type or shape.
        public static let invalidArgument = Code(rawValue: "invalid_argument")
        /// Only accounts can do this (friends, direct messages).
        public static let accountRequired = Code(rawValue: "account_required")
        /// No account has that handle.
        public static let unknownUser = Code(rawValue: "unknown_user")
        /// The request cannot be made; deliberately says no more (blocks are not disclosed).
        public static let refused = Code(rawValue: "refused")
        /// The two accounts are already friends.
        public static let alreadyFriends = Code(rawValue: "already_friends")
        /// No pending request from that account.
        public static let noRequest = Code(rawValue: "no_request")
        /// Direct messages need an accepted friendship.
        public static let notFriends = Code(rawValue: "not_friends")
        /// Only the room's owner may do this.
        public static let notOwner = Code(rawValue: "not_owner")
        /// An image larger than the limit.
        public static let imageTooLarge = Code(rawValue: "image_too_large")
        /// Not a PNG, JPEG, GIF or WebP image.
        public static let unsupportedImage = Code(rawValue: "unsupported_image")
        /// No such message or image (or not yours to see).
        public static let notFound = Code(rawValue: "not_found")
        /// Too many actions in a short time; try again a little later.
        public static let rateLimited = Code(rawValue: "rate_limited")
        /// The store could not be reached in time (a database that is down, a file another process
        /// keeps locked), or cannot write just now (a full disk); nothing was changed, and the same
        /// request may be tried again.
        public static let storeUnavailable = Code(rawValue: "store_unavailable")
        /// The server failed; nothing was changed.
        public static let internalError = Code(rawValue: "internal_error")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

extension ChatError {
    /// What a store answers when it cannot be reached in time (``Code/storeUnavailable``).
    public static let storeUnavailable = ChatError(
        .storeUnavailable, "The server's database is not answering just now; nothing was changed. Try again in a moment."
    )

    /// What a store answers when it cannot write (a full disk, a file that may not grow): the
    /// code of ``storeUnavailable``, for the request may be sent again once the operator has made
    /// room, but a message that says it may take longer than a moment.
    public static let storeCannotWrite = ChatError(
        .storeUnavailable, "The server's database cannot store anything just now (its disk may be full); nothing was changed. Try again later."
    )
}
