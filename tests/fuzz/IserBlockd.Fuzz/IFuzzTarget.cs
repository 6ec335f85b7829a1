namespace IserBlockd.Fuzz;

/// <summary>
/// One fuzzing harness: feeds outside bytes to a parser the way the daemon does. Errors the parser reports on
/// purpose (its protocol or configuration exception) are caught inside <see cref="Run"/>; anything else escapes
/// and is a finding (a crash, for AFL).
/// </summary>
public interface IFuzzTarget
{
    /// <summary>The name run.sh and the replay test use.</summary>
    string Name { get; }

    /// <summary>The assemblies (file names) SharpFuzz instruments for this target: the code under test.</summary>
    IReadOnlyList<string> Instrumented { get; }

    void Run(ReadOnlySpan<byte> input);

    /// <summary>Valid inputs taken from the unit tests' vectors, to start the corpus from.</summary>
    IEnumerable<(string Name, byte[] Data)> Seeds();
}
