using BenchmarkDotNet.Running;
using IserBlockd.Benchmarks.Iscsi;

if (args is ["--count-iscsi-allocations"])
{
    IscsiAllocationCount.Run(Console.Out);
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
