// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Parley",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "EngineIO", targets: ["EngineIO"]),
        .library(name: "SocketIO", targets: ["SocketIO"]),
        .library(name: "SocketIOClient", targets: ["SocketIOClient"]),
        .library(name: "ParleyCore", targets: ["ParleyCore"]),
        .library(name: "ParleyStoreSQLite", targets: ["ParleyStoreSQLite"]),
        .library(name: "ParleyStorePostgres", targets: ["ParleyStorePostgres"]),
        .library(name: "ParleyCluster", targets: ["ParleyCluster"]),
        .library(name: "ParleyE2E", targets: ["ParleyE2E"]),
        .library(name: "ParleyServer", targets: ["ParleyServer"]),
        .executable(name: "parley", targets: ["parley"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .target(
            name: "EngineIO",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "SocketIO",
            dependencies: [
                "EngineIO",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "SocketIOClient",
            dependencies: [
                "EngineIO",
                "SocketIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        .target(
            name: "ParleyCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "ParleyStoreSQLite",
            dependencies: [
                "ParleyCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ParleyStorePostgres",
            dependencies: [
                "ParleyCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ParleyCluster",
            dependencies: [
                "EngineIO",
                "SocketIO",
                "ParleyCore",
                "ParleyStorePostgres",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ParleyE2E",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "ParleyServer",
            dependencies: [
                "EngineIO",
                "SocketIO",
                "ParleyCore",
                "ParleyStoreSQLite",
                "ParleyStorePostgres",
                "ParleyCluster",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Resources/public")]
        ),
        .executableTarget(
            name: "parley",
            dependencies: [
                "ParleyServer",
                "ParleyCore",
                "ParleyStoreSQLite",
                "ParleyE2E",
                "SocketIOClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "socketio-testbed",
            dependencies: [
                "EngineIO",
                "SocketIO",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Testbed"
        ),
        .testTarget(name: "EngineIOTests", dependencies: ["EngineIO"]),
        .testTarget(name: "SocketIOTests", dependencies: ["SocketIO", "EngineIO"]),
        .testTarget(
            name: "ParleyCoreTests",
            dependencies: [
                "ParleyCore", "ParleyStoreSQLite", "ParleyStorePostgres", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "ParleyClusterTests",
            dependencies: ["ParleyCluster", "ParleyStorePostgres", "SocketIO", "EngineIO", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "ParleyE2ETests", dependencies: ["ParleyE2E", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "ParleyServerTests", dependencies: ["ParleyServer", "ParleyCore", "SocketIOClient"]),
    ],
    swiftLanguageModes: [.v6]
)
