using System.Net.Sockets;
using System.Text;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Control;
using Microsoft.Extensions.Logging.Abstractions;

namespace IserBlockd.Daemon.Tests.Control;

public sealed class ControlServerTests : IAsyncLifetime
{
    private readonly TestSupport.TempDirectory _dir = new("iserblockd-ctl");
    private readonly RecordingControl _control = new();
    private ControlServer _server = null!;

    private string SocketPath => Path.Combine(_dir.Path, "run", "control");

    public Task InitializeAsync()
    {
        _server = new ControlServer(SocketPath, _control, NullLogger<ControlServer>.Instance);
        _server.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _dir.Dispose();
    }

    private Task<ControlSocketResponse> Send(ControlSocketRequest request) => ControlClient.SendAsync(SocketPath, request, CancellationToken.None);

    [Fact]
    public void Socket_is_owner_only_in_an_owner_only_directory()
    {
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(SocketPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(SocketPath)!));
    }

    [Fact]
    public async Task List_and_status_return_what_the_daemon_reports()
    {
        var list = await Send(new ControlSocketRequest { Command = "list" });
        Assert.True(list.Ok);
        var session = Assert.Single(list.Sessions!);
        Assert.Equal("san1", session.Node);
        Assert.Equal(1234, session.Luns[0].Counters.Reads);

        var status = await Send(new ControlSocketRequest { Command = "status" });
        Assert.True(status.Ok);
        Assert.Equal("test-version", status.Status!.Version);
    }

    [Fact]
    public async Task Login_logout_map_unmap_reach_the_daemon_with_validated_arguments()
    {
        Assert.True((await Send(new ControlSocketRequest { Command = "login", Node = "san1" })).Ok);
        Assert.True((await Send(new ControlSocketRequest { Command = "logout", Node = "san1" })).Ok);
        var map = await Send(new ControlSocketRequest { Command = "map", Node = "san1", Lun = 2, Socket = "/tmp/x.sock", Listen = "127.0.0.1:10900" });
        Assert.True(map.Ok);
        Assert.True((await Send(new ControlSocketRequest { Command = "unmap", Node = "san1", Lun = 2 })).Ok);

        Assert.Equal(["login san1", "logout san1", "map san1 2 /tmp/x.sock 127.0.0.1:10900 san1-2", "unmap san1 2"], _control.Calls);
    }

    [Theory]
    [InlineData("""{"command":"reboot"}""", "unknown command \"reboot\"; known commands: " + ControlDispatcher.Commands)]
    [InlineData("""{"command":"login"}""", "login needs a node")]
    [InlineData("""{"command":"map","node":"san1"}""", "map needs a lun")]
    [InlineData("""{"command":"map","node":"san1","lun":0,"device":"/dev/sdb"}""", "device: expected \"/dev/nbdN\", \"auto\", \"ublk\" or \"/dev/ublkbN\", got \"/dev/sdb\"")]
    [InlineData("""{"command":"map","node":"san1","lun":0}""", "maps nothing")]
    [InlineData("""{"command":"list","bogus":1}""", "not a valid request")]
    [InlineData("""not json""", "not a valid request")]
    public async Task Bad_requests_get_a_clear_error_and_the_connection_stays_usable(string line, string expected)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath));
        await using var stream = new NetworkStream(socket);
        using var reader = new StreamReader(stream);
        await stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\n{\"command\":\"status\"}\n"));

        var error = System.Text.Json.JsonSerializer.Deserialize((await reader.ReadLineAsync())!, ControlJsonContext.Default.ControlSocketResponse)!;
        Assert.False(error.Ok);
        Assert.Equal(ControlErrorCodes.BadRequest, error.Error!.Code);
        Assert.Contains(expected, error.Error.Message);

        var next = System.Text.Json.JsonSerializer.Deserialize((await reader.ReadLineAsync())!, ControlJsonContext.Default.ControlSocketResponse)!;
        Assert.True(next.Ok);
        Assert.Empty(_control.Calls);
    }

    [Fact]
    [Trait("Category", "RealPeer")]
    public async Task A_user_other_than_root_or_the_daemon_is_refused()
    {
        if (Environment.UserName != "root")
        {
            // The daemon's own user may always talk to it.
            Assert.True((await Send(new ControlSocketRequest { Command = "status" })).Ok);
            return;
        }
        // Run a client as "nobody" (uid 65534) through setpriv; it needs the directory to be reachable to connect.
        File.SetUnixFileMode(Path.GetDirectoryName(SocketPath)!, (UnixFileMode)0x1FF);
        File.SetUnixFileMode(_dir.Path, (UnixFileMode)0x1FF);
        File.SetUnixFileMode(SocketPath, (UnixFileMode)0x1B6);
        var result = await TestSupport.ExternalProcess.RunAsync("setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c",
             $"import socket;s=socket.socket(socket.AF_UNIX);s.connect('{SocketPath}');s.sendall(b'{{\"command\":\"status\"}}\\n');print(s.makefile().readline())"]);
        result.EnsureSuccess();
        Assert.Contains("\"code\":\"access-denied\"", result.StandardOutput);
        Assert.Contains("root only (you are uid 65534)", result.StandardOutput);
    }

    [Fact]
    public async Task A_stopped_daemon_is_reported_as_not_running()
    {
        var response = await ControlClient.SendAsync(_dir.File("nothing-here"), new ControlSocketRequest { Command = "list" }, CancellationToken.None);
        Assert.False(response.Ok);
        Assert.Equal(ControlErrorCodes.NotRunning, response.Error!.Code);
        Assert.Equal(20, ControlErrorCodes.ExitCode(response.Error.Code));
    }

    [Fact]
    public async Task A_second_server_on_a_live_socket_is_refused_but_a_stale_one_is_replaced()
    {
        var second = new ControlServer(SocketPath, _control, NullLogger<ControlServer>.Instance);
        var e = Assert.Throws<IOException>(second.Start);
        Assert.Equal($"control socket {SocketPath}: address already in use (another iserblockd answers there)", e.Message);
        await second.DisposeAsync(); // a server that never bound leaves the live daemon's socket in place
        Assert.True((await ControlClient.SendAsync(SocketPath, new ControlSocketRequest { Command = "status" }, CancellationToken.None)).Ok);

        var stalePath = _dir.File("stale");
        using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            dead.Bind(new UnixDomainSocketEndPoint(stalePath)); // a socket file nobody listens on
        await using var third = new ControlServer(stalePath, _control, NullLogger<ControlServer>.Instance);
        third.Start();
        Assert.True((await ControlClient.SendAsync(stalePath, new ControlSocketRequest { Command = "status" }, CancellationToken.None)).Ok);
    }

    [Fact]
    public async Task A_file_that_is_not_a_socket_is_never_removed()
    {
        var path = _dir.File("not-a-socket");
        File.WriteAllText(path, "someone's data");
        await using var server = new ControlServer(path, _control, NullLogger<ControlServer>.Instance);
        var e = Assert.Throws<IOException>(server.Start);
        Assert.Contains("not a socket", e.Message);
        Assert.Equal("someone's data", File.ReadAllText(path));
    }

    private sealed class RecordingControl : IDaemonControl
    {
        public List<string> Calls { get; } = [];

        public List<SessionInfo> List() =>
        [
            new SessionInfo
            {
                Node = "san1", Target = "iqn.2003-01.org.example:a", Portal = "127.0.0.1:3260", Transport = "tcp", State = "logged-in",
                Luns = [new LunInfo { Lun = 0, State = "up", Counters = new LunCounters { Reads = 1234 } }],
            },
        ];

        public ControlSocketResponse Show(string? node) => new() { Ok = true, Sessions = List() };

        public StatusInfo Status() => new() { Version = "test-version", Pid = Environment.ProcessId };

        public Task<ControlSocketResponse> LoginAsync(string node, CancellationToken cancellationToken) => Record($"login {node}");

        public Task<ControlSocketResponse> LogoutAsync(string node, CancellationToken cancellationToken) => Record($"logout {node}");

        public Task<ControlSocketResponse> MapAsync(MapRequest request, CancellationToken cancellationToken) =>
            Record($"map {request.Node} {request.Mapping.Lun} {request.Mapping.Socket} {request.Mapping.Listen} {request.Mapping.ExportName}");

        public Task<ControlSocketResponse> UnmapAsync(string node, int lun, CancellationToken cancellationToken) => Record($"unmap {node} {lun}");

        public Task<ControlSocketResponse> ReloadAsync(CancellationToken cancellationToken) => Record("reload");

        public Task<ControlSocketResponse> LunsAsync(string node, CancellationToken cancellationToken) => Record($"luns {node}");

        public Task<ControlSocketResponse> RescanAsync(string node, int? lun, CancellationToken cancellationToken) => Record($"rescan {node} {lun}");

        private Task<ControlSocketResponse> Record(string call)
        {
            lock (Calls) Calls.Add(call);
            return Task.FromResult(ControlSocketResponse.Success(call));
        }
    }
}
