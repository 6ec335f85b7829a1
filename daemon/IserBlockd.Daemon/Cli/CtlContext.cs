using System.CommandLine;
using IserBlockd.Daemon.Identity;
using Microsoft.Extensions.Logging;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// What iserblockctl commands share: where output and errors go, how the initiator name is found, and the
/// uniform ending of every command (exit code, one line on standard error).
/// </summary>
public sealed class CtlContext
{
    public CtlContext(TextWriter? output = null, TextWriter? error = null, Func<InitiatorIdentity>? identity = null)
    {
        Output = output ?? Console.Out;
        Error = error ?? Console.Error;
        Identity = identity ?? (() => new InitiatorIdentity());
    }

    public TextWriter Output { get; }
    public TextWriter Error { get; }
    public Func<InitiatorIdentity> Identity { get; }

    /// <summary>Runs a command body: logging per <c>-v</c>, and every failure turned into its exit code and one line.</summary>
    public async Task<int> RunAsync(ParseResult result, OutputOptions output, Func<ILoggerFactory, TextWriter, Task<int>> body)
    {
        var command = result.CommandResult.Command.Name;
        using var loggers = new StderrLoggerFactory(Error, result.GetValue(output.Verbose) ? LogLevel.Debug : LogLevel.None);
        try
        {
            return await body(loggers, Output).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var failure = CliFailure.From(e);
            await Error.WriteLineAsync($"iserblockctl {command}: {failure.Message}").ConfigureAwait(false);
            return failure.ExitCode;
        }
    }
}
