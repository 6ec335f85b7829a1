using System.Globalization;
using System.Runtime.InteropServices;
using IserBlockd.Daemon.Native;
using IserBlockd.Iscsi.Security;
using Microsoft.Win32.SafeHandles;
using IserBlockd.Primitives.Native;

namespace IserBlockd.Daemon.Configuration;

/// <summary>
/// Reads a CHAP secret from a file the way sshd treats private keys: the file must be a regular file
/// readable by its owner only (mode 0600 or stricter), and owned by root when we run as root; anything
/// else is refused with the file's name and mode. The checks are made on the open file, so the file
/// cannot be swapped between the check and the read.
/// </summary>
public static class SecretFile
{
    private const int MaxSecretBytes = 4096;
    private const ushort TypeMask = 0xF000;  // S_IFMT
    private const ushort RegularFile = 0x8000; // S_IFREG

    /// <summary>Reads the secret, or returns null with <paramref name="error"/> saying what is wrong.</summary>
    public static ChapSecret? TryRead(string path, out string error)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"cannot read {path}: {e.Message}";
            return null;
        }

        using (handle)
        {
            if (!TryStat(handle, out var stat, out error))
            {
                error = $"cannot check {path}: {error}";
                return null;
            }
            if ((stat.Mode & TypeMask) != RegularFile)
            {
                error = $"{path} is not a regular file";
                return null;
            }
            var permissions = stat.Mode & 0x1FF;
            if ((permissions & 0x3F) != 0) // any group or other bit (077)
            {
                error = $"{path} has mode {FormatMode(permissions)}; a secret file must be mode 0600 or stricter (chmod 600 {path})";
                return null;
            }
            if (LibC.geteuid() == 0 && stat.Uid != 0)
            {
                error = $"{path} is owned by uid {stat.Uid.ToString(CultureInfo.InvariantCulture)}; running as root, a secret file must be owned by root (chown root {path})";
                return null;
            }
            if (stat.Size > MaxSecretBytes)
            {
                error = $"{path} is {stat.Size.ToString(CultureInfo.InvariantCulture)} bytes; a CHAP secret file holds one secret (at most {MaxSecretBytes} bytes)";
                return null;
            }

            Span<byte> buffer = stackalloc byte[MaxSecretBytes + 1];
            var length = 0;
            int read;
            while (length < buffer.Length && (read = RandomAccess.Read(handle, buffer[length..], length)) > 0)
                length += read;
            var secret = TrimOneLineEnd(buffer[..length]);
            var result = secret.IsEmpty ? null : new ChapSecret(secret);
            buffer.Clear();
            if (result == null)
            {
                error = $"{path} is empty";
                return null;
            }
            error = "";
            return result;
        }
    }

    /// <summary><c>echo secret &gt; file</c> leaves a newline that is not part of the secret.</summary>
    private static ReadOnlySpan<byte> TrimOneLineEnd(ReadOnlySpan<byte> bytes)
    {
        if (bytes.EndsWith("\r\n"u8)) return bytes[..^2];
        if (bytes.EndsWith("\n"u8)) return bytes[..^1];
        return bytes;
    }

    private static unsafe bool TryStat(SafeFileHandle handle, out StatX stat, out string error)
    {
        StatX result;
        if (LibC.statx((int)handle.DangerousGetHandle(), "", LibC.AT_EMPTY_PATH, LibC.STATX_BASIC_STATS, &result) != 0)
        {
            stat = default;
            error = Marshal.GetLastPInvokeErrorMessage();
            return false;
        }
        stat = result;
        error = "";
        return true;
    }

    private static string FormatMode(int permissions) => "0" + Convert.ToString(permissions, 8).PadLeft(3, '0');
}
