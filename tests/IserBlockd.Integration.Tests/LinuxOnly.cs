// Linux-only, and run one test at a time: each starts tgtd, the daemon and NBD clients with real I/O,
// which on a 2-core CI machine is more reliable in sequence than all at once.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
[assembly: CollectionBehavior(DisableTestParallelization = true)]
