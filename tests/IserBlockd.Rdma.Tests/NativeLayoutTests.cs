using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using IserBlockd.Rdma.Interop;
using IserBlockd.TestSupport;

namespace IserBlockd.Rdma.Tests;

/// <summary>
/// Compiles a C program against the installed rdma-core (and libc) headers that prints sizeof/offsetof for every
/// struct and field the bindings mirror, and compares it with the C# structs.
/// </summary>
[Trait("Category", "RealPeer")]
public sealed class NativeLayoutTests
{
    private static readonly Assembly Bindings = typeof(IbvWc).Assembly;

    private static IEnumerable<Type> MirroredStructs() =>
        Bindings.GetTypes().Where(t => t.GetCustomAttribute<NativeStructAttribute>() != null).OrderBy(t => t.Name);

    [Fact]
    public void Every_interop_struct_declares_its_C_counterpart_and_maps_every_field()
    {
        var problems = new List<string>();
        foreach (var type in Bindings.GetTypes().Where(t => t.Namespace == typeof(IbvWc).Namespace && t.IsValueType && !t.IsEnum
                     && t.GetCustomAttribute<CompilerGeneratedAttribute>() == null))
        {
            if (type.GetCustomAttribute<NativeStructAttribute>() == null)
            {
                problems.Add($"{type.Name} has no [NativeStruct]");
                continue;
            }
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
                if (field.GetCustomAttribute<NativeFieldAttribute>() == null)
                    problems.Add($"{type.Name}.{field.Name} has no [NativeField]");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(MirroredStructs().Count() >= 20, "expected the verbs, rdma_cm, sockaddr and epoll structs to be mirrored");
    }

    [Fact]
    public async Task Struct_sizes_and_field_offsets_match_the_rdma_core_headers()
    {
        var (mismatches, compared) = await CompareWithHeadersAsync(MirroredStructs().ToList());
        Assert.True(mismatches.Count == 0,
            $"{mismatches.Count} layout mismatch(es) between the C# mirrors and the installed headers:\n" + string.Join("\n", mismatches));
        Assert.True(compared > 100, $"only {compared} fields compared");
    }

    /// <summary>The comparison itself must catch a wrong mirror (here: lkey put where length is).</summary>
    [Fact]
    public async Task A_wrong_mirror_is_reported_with_both_values()
    {
        var (mismatches, _) = await CompareWithHeadersAsync([typeof(WrongSge)]);
        Assert.Contains("  offsetof(struct ibv_sge, lkey) [WrongSge.LocalKey]: C says 12, C# says 8", mismatches);
        Assert.Contains("  sizeof(struct ibv_sge) [WrongSge]: C says 16, C# says 12", mismatches);
    }

    [NativeStruct("struct ibv_sge", "infiniband/verbs.h")]
    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    private struct WrongSge
    {
        [NativeField("addr")] public ulong Address;
        [NativeField("lkey")] public uint LocalKey;
    }

    private static async Task<(List<string> Mismatches, int Compared)> CompareWithHeadersAsync(List<Type> structs)
    {
        using var dir = new TempDirectory("rdma-layout");
        var program = GenerateProgram(structs);
        var source = dir.File("layout.c");
        await File.WriteAllTextAsync(source, program);
        var exe = dir.File("layout");
        var compile = await ExternalProcess.RunAsync("gcc", ["-std=gnu11", "-Wall", "-Werror", "-o", exe, source]);
        Assert.True(compile.ExitCode == 0, $"gcc could not compile the layout probe against the rdma-core headers " +
            $"(libibverbs-dev, librdmacm-dev):\n{compile.StandardError}\n--- layout.c ---\n{program}");
        var run = (await ExternalProcess.RunAsync(exe, [])).EnsureSuccess();

        var native = ParseOutput(run.StandardOutput);
        var mismatches = new List<string>();
        var compared = 0;
        foreach (var type in structs)
        {
            var cType = type.GetCustomAttribute<NativeStructAttribute>()!.CType;
            Compare($"sizeof({cType}) [{type.Name}]", native[$"S|{cType}"], ManagedSize(type), mismatches);
            foreach (var field in MappedFields(type))
            {
                var member = field.GetCustomAttribute<NativeFieldAttribute>()!.CMember;
                var (offset, size) = native[$"F|{cType}|{member}"];
                Compare($"offsetof({cType}, {member}) [{type.Name}.{field.Name}]", offset, (long)Marshal.OffsetOf(type, field.Name), mismatches);
                Compare($"sizeof({cType}.{member}) [{type.Name}.{field.Name}]", size, FieldSize(field), mismatches);
                compared++;
            }
        }
        return (mismatches, compared);
    }

    private static void Compare(string what, (long Offset, long Size) c, long managed, List<string> mismatches) =>
        Compare(what, c.Size, managed, mismatches);

    private static void Compare(string what, long c, long managed, List<string> mismatches)
    {
        if (c != managed) mismatches.Add($"  {what}: C says {c}, C# says {managed}");
    }

    private static IEnumerable<FieldInfo> MappedFields(Type type) =>
        type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
            .Where(f => f.GetCustomAttribute<NativeFieldAttribute>() != null);

    private static string GenerateProgram(IEnumerable<Type> structs)
    {
        var list = structs.ToList();
        var sb = new StringBuilder();
        sb.AppendLine("#define _GNU_SOURCE");
        sb.AppendLine("#include <stdio.h>");
        sb.AppendLine("#include <stddef.h>");
        foreach (var header in list.Select(t => t.GetCustomAttribute<NativeStructAttribute>()!.Header).Distinct().Order(StringComparer.Ordinal))
            sb.AppendLine($"#include <{header}>");
        sb.AppendLine("#define S(t) printf(\"S|%s\\t%zu\\n\", #t, sizeof(t))");
        sb.AppendLine("#define F(t, m) printf(\"F|%s|%s\\t%zu\\t%zu\\n\", #t, #m, offsetof(t, m), sizeof(((t *)0)->m))");
        sb.AppendLine("int main(void) {");
        foreach (var type in list)
        {
            var cType = type.GetCustomAttribute<NativeStructAttribute>()!.CType;
            sb.AppendLine($"    S({cType});");
            foreach (var field in MappedFields(type))
                sb.AppendLine($"    F({cType}, {field.GetCustomAttribute<NativeFieldAttribute>()!.CMember});");
        }
        sb.AppendLine("    return 0;");
        sb.AppendLine("}");
        return sb.ToString();
    }

    private static Dictionary<string, (long Offset, long Size)> ParseOutput(string output)
    {
        var result = new Dictionary<string, (long, long)>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split('\t');
            result[parts[0]] = parts.Length == 2 ? (0, long.Parse(parts[1])) : (long.Parse(parts[1]), long.Parse(parts[2]));
        }
        return result;
    }

    private static long ManagedSize(Type type) =>
        (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(type).Invoke(null, null)!;

    private static long FieldSize(FieldInfo field)
    {
        var fixedBuffer = field.GetCustomAttribute<FixedBufferAttribute>();
        if (fixedBuffer != null) return fixedBuffer.Length * ManagedSize(fixedBuffer.ElementType);
        var t = field.FieldType;
        if (t.IsPointer || t.IsFunctionPointer || t.IsUnmanagedFunctionPointer || t == typeof(nint) || t == typeof(nuint)) return IntPtr.Size;
        if (t.IsEnum) return ManagedSize(Enum.GetUnderlyingType(t));
        return ManagedSize(t);
    }
}
