using System.CommandLine;

namespace IserBlockd.Daemon.Cli;

/// <summary><c>-o text|json</c> and <c>-v</c>, shared by every iserblockctl command.</summary>
public sealed class OutputOptions
{
    public Option<string> Format { get; } = new("--output", "-o")
    {
        Description = "Output format: text or json",
        HelpName = "FORMAT",
        DefaultValueFactory = _ => "text",
    };

    public Option<bool> Verbose { get; } = new("--verbose", "-v") { Description = "Log protocol details to standard error" };

    public OutputOptions() => Format.AcceptOnlyFromAmong("text", "json");

    public void AddTo(Command command)
    {
        command.Add(Format);
        command.Add(Verbose);
    }

    public bool IsJson(ParseResult result) => result.GetValue(Format) == "json";
}
