import Logging

/// `reload_on_change`: keeps a ``ConfigFileWatcher`` running while the running
/// configuration asks for one, watching that configuration's files.
///
/// ``ProxyService`` calls ``follow(_:)`` at start and after every reload,
/// successful or not, from the one task that runs reloads: the watched set is
/// then always the running configuration's (files added, files dropped, a
/// directory that could not be watched tried again), and turning the key on or
/// off by a reload starts or stops the watcher. A change only asks for a
/// reload (`requestReload`); the reload itself is the SIGHUP one,
/// ``ReloadCoordinator``, so a broken new file is a failed reload like any other.
actor ReloadOnChange {
    private var watcher: ConfigFileWatcher?
    private let logger: Logger
    private let requestReload: @Sendable () -> Void

    init(logger: Logger, requestReload: @escaping @Sendable () -> Void) {
        self.logger = logger
        self.requestReload = requestReload
    }

    /// Starts, updates or stops the watcher as `configuration` says.
    func follow(_ configuration: ProxyConfiguration) async {
        guard configuration.daemon.reloadOnChange else {
            if let watcher {
                self.watcher = nil
                await watcher.stop()
                logger.info("reload_on_change: off; files are no longer watched")
            }
            return
        }
        if watcher == nil {
            watcher = ConfigFileWatcher.start(logger: logger) { [requestReload] _ in requestReload() }
        }
        watcher?.watch(configuration.namedFiles)
    }

    /// Stops the watcher, if one runs (at shutdown).
    func stop() async {
        guard let watcher else { return }
        self.watcher = nil
        await watcher.stop()
    }
}
