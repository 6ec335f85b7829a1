using IserBlockd.Fuzz;
using SharpFuzz;

// IserBlockd.Fuzz list | seeds TARGET DIR | fuzz TARGET | replay TARGET PATH...
if (args.Length == 0)
    return Usage();
switch (args[0])
{
    case "list":
        foreach (var t in FuzzTargets.All) Console.WriteLine($"{t.Name} {string.Join(',', t.Instrumented)}");
        return 0;
    case "seeds" when args.Length == 3 && FuzzTargets.Find(args[1]) is { } target:
        Directory.CreateDirectory(args[2]);
        foreach (var (name, data) in target.Seeds()) File.WriteAllBytes(Path.Combine(args[2], name), data);
        return 0;
    case "fuzz" when args.Length == 2 && FuzzTargets.Find(args[1]) is { } target:
        // AFL++ persistent mode: one process runs many inputs; an escaping exception is a crash.
        var input = new MemoryStream();
        Fuzzer.Run(stream =>
        {
            input.SetLength(0);
            stream.CopyTo(input);
            target.Run(input.GetBuffer().AsSpan(0, (int)input.Length));
        });
        return 0;
    case "replay" when args.Length >= 3 && FuzzTargets.Find(args[1]) is { } target:
        var failures = 0;
        var files = args.Skip(2).SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p) : [p]).ToList();
        foreach (var file in files)
        {
            try { target.Run(File.ReadAllBytes(file)); }
            catch (Exception e)
            {
                failures++;
                Console.Error.WriteLine($"{file}: {e.GetType().Name}: {e.Message}");
                if (Environment.GetEnvironmentVariable("FUZZ_TRACE") == "1") Console.Error.WriteLine(e);
            }
        }
        Console.WriteLine($"replayed {files.Count} inputs, {failures} failed");
        return failures == 0 ? 0 : 1;
    default:
        return Usage();
}

static int Usage()
{
    Console.Error.WriteLine("usage: IserBlockd.Fuzz list | seeds TARGET DIR | fuzz TARGET | replay TARGET PATH...");
    return 2;
}
