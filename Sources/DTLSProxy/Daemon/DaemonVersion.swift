/// The daemon's version, as `--version` prints it.
public enum DaemonVersion {
    public static let string = "0.1.0"
}
