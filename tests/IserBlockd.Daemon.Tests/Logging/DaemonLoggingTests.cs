using System.Text;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Logging;
using Serilog.Events;
using Serilog.Extensions.Logging;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Tests.Logging;

public sealed class DaemonLoggingTests
{
    private static (ILoggerFactory Factory, StringWriter Output) Create(LoggingSettings settings, LogConsoleKind kind)
    {
        var output = new StringWriter();
        var logger = DaemonLogging.CreateLogger(settings, kind, output);
        return (new SerilogLoggerFactory(logger, dispose: true), output);
    }

    [Fact]
    public void Journal_lines_carry_the_syslog_priority_of_their_level()
    {
        var (factory, output) = Create(LoggingSettings.Default with { Level = LogEventLevel.Debug }, LogConsoleKind.Journal);
        using (factory)
        {
            var log = factory.CreateLogger("IserBlockd.Daemon.Sessions.NodeSupervisor");
            log.LogDebug("probe {N}", 1);
            log.LogInformation("logged in to {Target}", "iqn.2003-01.org.example:a");
            log.LogWarning("slow");
            log.LogError(new InvalidOperationException("boom"), "failed");
            log.LogCritical("fatal");
        }
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("<7>NodeSupervisor: probe 1", lines[0]);
        Assert.Equal("<6>NodeSupervisor: logged in to iqn.2003-01.org.example:a", lines[1]);
        Assert.Equal("<4>NodeSupervisor: slow", lines[2]);
        Assert.Equal("<3>NodeSupervisor: failed", lines[3]);
        Assert.Equal("<3>System.InvalidOperationException: boom", lines[4]);
        Assert.Equal("<2>NodeSupervisor: fatal", lines[^1]);
        Assert.All(lines, l => Assert.Matches("^<[2-7]>", l)); // even exception lines keep a priority
    }

    [Fact]
    public void Component_levels_override_the_global_level_by_namespace()
    {
        var settings = new LoggingSettings(LogEventLevel.Warning,
            new Dictionary<string, LogEventLevel> { ["IserBlockd.Iscsi"] = LogEventLevel.Debug }, null);
        var (factory, output) = Create(settings, LogConsoleKind.Plain);
        using (factory)
        {
            factory.CreateLogger("IserBlockd.Iscsi.Login").LogDebug("iscsi debug");
            factory.CreateLogger("IserBlockd.BlockDev.Nbd").LogInformation("nbd info");
            factory.CreateLogger("IserBlockd.BlockDev.Nbd").LogWarning("nbd warning");
        }
        var text = output.ToString();
        Assert.Contains("Login: iscsi debug", text);
        Assert.DoesNotContain("nbd info", text);
        Assert.Contains("Nbd: nbd warning", text);
    }

    [Fact]
    public void No_secret_reaches_a_log_or_a_config_dump()
    {
        using var dir = new TestSupport.TempDirectory("iserblockd-log");
        const string initiatorSecret = "very-secret-initiator-9271";
        const string targetSecret = "very-secret-target-5512";
        File.WriteAllText(dir.File("i"), initiatorSecret);
        File.WriteAllText(dir.File("t"), targetSecret);
        File.SetUnixFileMode(dir.File("i"), UnixFileMode.UserRead);
        File.SetUnixFileMode(dir.File("t"), UnixFileMode.UserRead);
        var settings = ConfigLoader.Parse(Encoding.UTF8.GetBytes($$"""
            { "nodes": [ { "name": "a", "portals": ["h"], "target": "iqn.2003-01.org.example:a",
                           "chap": { "user": "u", "secretFile": "{{dir.File("i")}}", "targetUser": "t", "targetSecretFile": "{{dir.File("t")}}" },
                           "luns": [ { "lun": 0, "device": "auto" } ] } ] }
            """), "t.json");
        var chap = settings.Nodes[0].Chap!;
        Assert.Equal(IserBlockd.Iscsi.Security.ChapSecret.FromString(initiatorSecret), chap.Secret);

        var (factory, output) = Create(LoggingSettings.Default with { Level = LogEventLevel.Verbose }, LogConsoleKind.Plain);
        using (factory)
        {
            var log = factory.CreateLogger("Test");
            log.LogInformation("settings {Settings}", settings);
            log.LogInformation("chap {@Chap} {Secret} {@Secret}", chap, chap.Secret, chap.TargetSecret);
            log.LogInformation("node {Node}", settings.Nodes[0]);
        }
        var dump = ConfigDump.ToJson(settings);
        foreach (var text in new[] { output.ToString(), dump, settings.ToString(), chap.ToString() })
        {
            Assert.DoesNotContain(initiatorSecret, text);
            Assert.DoesNotContain(targetSecret, text);
        }
        Assert.Contains("(secret)", output.ToString());
        Assert.Contains(dir.File("i"), dump); // the dump names the file, which is what an operator needs
    }

    [Fact]
    public void Config_dump_is_a_valid_config_that_reads_back_the_same()
    {
        var settings = ConfigLoader.Parse(Encoding.UTF8.GetBytes("""
            { "replacementTimeout": 30, "logging": { "level": "debug", "components": { "IserBlockd.Iscsi": "warning" } },
              "nodes": [ { "name": "a", "portals": ["[fd00::1]:3261", "10.0.0.1"], "target": "iqn.2003-01.org.example:a", "transport": "tcp",
                           "operational": { "dataDigest": "CRC32C,None", "maxBurstLength": 65536 },
                           "luns": [ { "lun": 3, "device": "/dev/nbd2", "nbd": { "listen": "127.0.0.1:10900" }, "readOnly": true } ] } ] }
            """), "t.json");
        var again = ConfigLoader.Parse(Encoding.UTF8.GetBytes(ConfigDump.ToJson(settings)), "dump");
        Assert.Equal(ConfigDump.ToJson(settings), ConfigDump.ToJson(again));
        Assert.Equal(TimeSpan.FromSeconds(30 + 225 + 30), again.KernelNbdTimeout);
        Assert.Equal(settings.Nodes[0].Portals, again.Nodes[0].Portals);
        Assert.Equal(settings.Nodes[0].Luns[0], again.Nodes[0].Luns[0]);
    }
}
