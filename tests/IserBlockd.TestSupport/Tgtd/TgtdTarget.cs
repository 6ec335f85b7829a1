using System.Globalization;

namespace IserBlockd.TestSupport.Tgtd;

/// <summary>A target of a <see cref="TgtdServer"/>: LUNs, ACLs, CHAP bindings and iSCSI parameters.</summary>
public sealed class TgtdTarget
{
    internal TgtdTarget(TgtdServer server, int tid, string name)
    {
        Server = server;
        Tid = tid;
        Name = name;
    }

    public TgtdServer Server { get; }
    public int Tid { get; }
    public string Name { get; }

    private string TidText => Tid.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Adds a disk LUN backed by a sparse file (created unless it exists) of <paramref name="sizeBytes"/> with the
    /// given logical block size. <paramref name="thinProvisioning"/> enables UNMAP/WRITE SAME with hole punching.
    /// Returns the backing file path.
    /// </summary>
    public async Task<string> AddLunAsync(int lun, long sizeBytes, int blockSize = 512, bool thinProvisioning = false, string? backingFile = null)
    {
        backingFile ??= Server.Directory.File($"tid{Tid}-lun{lun}.img");
        if (!File.Exists(backingFile))
        {
            using var f = new FileStream(backingFile, FileMode.CreateNew, FileAccess.Write);
            f.SetLength(sizeBytes);
        }
        await Server.ConfigureAsync("--mode", "logicalunit", "--op", "new", "--tid", TidText, "--lun", lun.ToString(CultureInfo.InvariantCulture),
            "--backing-store", backingFile, "--blocksize", blockSize.ToString(CultureInfo.InvariantCulture));
        if (thinProvisioning) await SetLunParametersAsync(lun, "thin_provisioning=1");
        return backingFile;
    }

    /// <summary>Removes a LUN (tgtd tells the other sessions with REPORTED LUNS DATA HAS CHANGED).</summary>
    public Task DeleteLunAsync(int lun)
        => Server.ConfigureAsync("--mode", "logicalunit", "--op", "delete", "--tid", TidText, "--lun", lun.ToString(CultureInfo.InvariantCulture));

    /// <summary>Sets LUN parameters (<c>vendor_id=X,product_id=Y,thin_provisioning=1,readonly=1,...</c>).</summary>
    public Task SetLunParametersAsync(int lun, string parameters)
        => Server.ConfigureAsync("--mode", "logicalunit", "--op", "update", "--tid", TidText, "--lun", lun.ToString(CultureInfo.InvariantCulture), "--params", parameters);

    /// <summary>Admits initiators by address (<c>ALL</c>, <c>127.0.0.1</c>, a subnet).</summary>
    public Task BindAsync(string initiatorAddress = "ALL")
        => Server.ConfigureAsync("--mode", "target", "--op", "bind", "--tid", TidText, "--initiator-address", initiatorAddress);

    /// <summary>Admits only initiators with this name (in addition to an address binding).</summary>
    public Task BindInitiatorNameAsync(string initiatorName)
        => Server.ConfigureAsync("--mode", "target", "--op", "bind", "--tid", TidText, "--initiator-name", initiatorName);

    /// <summary>Requires CHAP: the initiator authenticates as <paramref name="user"/> (tgtd "incoming" account).</summary>
    public async Task RequireChapAsync(string user, string password)
    {
        await Server.CreateAccountAsync(user, password);
        await Server.ConfigureAsync("--mode", "account", "--op", "bind", "--tid", TidText, "--user", user);
    }

    /// <summary>Mutual CHAP: the target authenticates itself as <paramref name="user"/> (tgtd "outgoing" account).</summary>
    public async Task SetOutgoingAccountAsync(string user, string password)
    {
        await Server.CreateAccountAsync(user, password);
        await Server.ConfigureAsync("--mode", "account", "--op", "bind", "--tid", TidText, "--user", user, "--outgoing");
    }

    /// <summary>
    /// Sets a target iSCSI parameter tgtd negotiates: MaxRecvDataSegmentLength, MaxBurstLength, FirstBurstLength,
    /// InitialR2T, ImmediateData, HeaderDigest, DataDigest, MaxOutstandingR2T, ... (values as in login: Yes, CRC32C, 16384).
    /// </summary>
    public Task SetParameterAsync(string name, string value)
        => Server.ConfigureAsync("--mode", "target", "--op", "update", "--tid", TidText, "--name", name, "--value", value);

    /// <summary>Makes logins to this target redirect (status 0x0101 or 0x0102) to <paramref name="address"/>:<paramref name="port"/>.</summary>
    public async Task RedirectAsync(string address, int port, bool permanent = false)
    {
        await SetParameterAsync("RedirectAddress", address);
        await SetParameterAsync("RedirectPort", port.ToString(CultureInfo.InvariantCulture));
        await SetParameterAsync("RedirectReason", permanent ? "Permanent" : "Temporary");
    }

    public Task<IReadOnlyList<TgtdSession>> ListSessionsAsync() => Server.ListSessionsAsync(Tid);
}
