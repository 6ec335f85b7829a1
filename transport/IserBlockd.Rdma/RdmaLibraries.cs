namespace IserBlockd.Rdma;

/// <summary>Turns a missing rdma-core shared library into a clear <see cref="RdmaUnavailableException"/>.</summary>
internal static class RdmaLibraries
{
    public const string MissingMessage =
        "rdma-core is not installed (libibverbs.so.1 / librdmacm.so.1 not found): install the rdma-core, libibverbs1, librdmacm1 and ibverbs-providers packages";

    public static T Call<T>(Func<T> call)
    {
        try
        {
            return call();
        }
        catch (DllNotFoundException e)
        {
            throw new RdmaUnavailableException(MissingMessage, 0, e);
        }
        catch (EntryPointNotFoundException e)
        {
            throw new RdmaUnavailableException("the installed rdma-core is too old for IserBlockd: " + e.Message, 0, e);
        }
    }
}
