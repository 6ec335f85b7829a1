// The daemon and its tests are Linux-only (Unix sockets, netlink, file modes).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
