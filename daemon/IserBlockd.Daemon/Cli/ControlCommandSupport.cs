using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using IserBlockd.Daemon.Configuration;
using IserBlockd.Daemon.Control;

namespace IserBlockd.Daemon.Cli;

/// <summary>
/// What the commands that talk to the running daemon share: <c>--control-socket</c>, sending one request, and
/// turning a refusal into iscsiadm's exit code with one line on standard error.
/// </summary>
public sealed class ControlCommandSupport
{
    public Option<string> Socket { get; } = new("--control-socket")
    {
        Description = $"The daemon's control socket (default {DaemonSettings.DefaultControlSocket})",
        HelpName = "PATH",
        DefaultValueFactory = _ => DaemonSettings.DefaultControlSocket,
    };

    public OutputOptions Output { get; } = new();

    public void AddTo(Command command)
    {
        command.Add(Socket);
        Output.AddTo(command);
    }

    /// <summary>
    /// A command that sends one request to the daemon and prints its answer: <paramref name="symbols"/> are its arguments
    /// and options, <paramref name="request"/> builds the request from them, <paramref name="render"/> prints the answer
    /// (<see cref="RenderMessage"/> for commands that change something).
    /// </summary>
    public static Command Create(CtlContext context, string name, string description, IEnumerable<Symbol> symbols,
        Func<ParseResult, ControlSocketRequest> request, Func<ControlSocketResponse, TextWriter, bool, Task>? render = null)
    {
        var control = new ControlCommandSupport();
        var command = new Command(name, description);
        foreach (var symbol in symbols)
        {
            if (symbol is Argument argument) command.Add(argument);
            else command.Add((Option)symbol);
        }
        control.AddTo(command);
        command.SetAction((result, cancellationToken) => context.RunAsync(result, control.Output, (_, stdout) =>
            control.SendAsync(result, stdout, request(result), render ?? RenderMessage, cancellationToken)));
        return command;
    }

    /// <summary>
    /// A command that asks the daemon for something and prints it: <paramref name="select"/> takes it from the answer,
    /// printed as JSON (<paramref name="json"/>) with <c>-o json</c>, else by <paramref name="renderText"/>.
    /// </summary>
    public static Command CreateView<T>(CtlContext context, string name, string description, IEnumerable<Symbol> symbols,
        Func<ParseResult, ControlSocketRequest> request, Func<ControlSocketResponse, T> select, JsonTypeInfo<T> json,
        Func<T, TextWriter, Task> renderText) =>
        Create(context, name, description, symbols, request, async (response, stdout, asJson) =>
        {
            var view = select(response);
            if (asJson) await stdout.WriteLineAsync(JsonSerializer.Serialize(view, json)).ConfigureAwait(false);
            else await renderText(view, stdout).ConfigureAwait(false);
        });

    /// <summary>Sends <paramref name="request"/> and hands a successful answer to <paramref name="render"/>;
    /// a refusal becomes <see cref="CliFailure"/> (exit code and message).</summary>
    public async Task<int> SendAsync(ParseResult result, TextWriter stdout, ControlSocketRequest request,
        Func<ControlSocketResponse, TextWriter, bool, Task> render, CancellationToken cancellationToken)
    {
        var response = await ControlClient.SendAsync(result.GetValue(Socket)!, request, cancellationToken).ConfigureAwait(false);
        if (!response.Ok)
        {
            var error = response.Error ?? new ControlError { Code = ControlErrorCodes.Internal, Message = "the daemon gave no reason" };
            throw new CliFailure(ControlErrorCodes.ExitCode(error.Code), error.Message);
        }
        await render(response, stdout, Output.IsJson(result)).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    /// <summary>For commands that change something: the daemon's sentence, or <c>{"ok":true,"message":...}</c>.</summary>
    public static async Task RenderMessage(ControlSocketResponse response, TextWriter stdout, bool json)
    {
        if (json)
            await stdout.WriteLineAsync(JsonSerializer.Serialize(response, ControlOutputJsonContext.Readable.ControlSocketResponse)).ConfigureAwait(false);
        else if (response.Message != null)
            await stdout.WriteLineAsync(response.Message).ConfigureAwait(false);
    }

    public static Argument<string> NodeArgument() => new("NODE") { Description = "Node name from the daemon's configuration" };

    public static Argument<int> LunArgument() => new("LUN") { Description = "LUN number" };

    /// <summary>Bytes as people read them: 512 B, 64 MiB, 1.5 GiB.</summary>
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0 ? $"{bytes} B" : value.ToString(value >= 100 || value % 1 == 0 ? "0" : "0.#", CultureInfo.InvariantCulture) + " " + units[unit];
    }
}
