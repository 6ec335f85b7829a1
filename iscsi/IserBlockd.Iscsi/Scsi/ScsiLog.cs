using Microsoft.Extensions.Logging;

namespace IserBlockd.Iscsi.Scsi;

/// <summary>Every message a LUN logs, as source-generated (allocation-free when disabled) methods.</summary>
internal static partial class ScsiLog
{
    [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "LUN {Lun}: mode parameters changed; the caching page is read again")]
    public static partial void ModeParametersChanged(ILogger logger, ulong lun);

    [LoggerMessage(EventId = 202, Level = LogLevel.Warning, Message = "LUN {Lun}: inquiry data changed")]
    public static partial void InquiryDataChanged(ILogger logger, ulong lun);

    [LoggerMessage(EventId = 203, Level = LogLevel.Error, Message = "{Reason}")]
    public static partial void CapacityCheckFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 204, Level = LogLevel.Warning, Message = "LUN {Lun}: capacity changed from {Old} to {New} blocks of {BlockSize} bytes")]
    public static partial void CapacityChanged(ILogger logger, ulong lun, ulong old, ulong @new, uint blockSize);

    [LoggerMessage(EventId = 205, Level = LogLevel.Error, Message = "LUN {Lun}: reading the capacity again failed: {Reason}")]
    public static partial void CapacityRereadFailed(ILogger logger, ulong lun, string reason);

    [LoggerMessage(EventId = 206, Level = LogLevel.Debug, Message = "LUN {Lun}: no supported VPD pages list ({Reason})")]
    public static partial void NoVpdPagesList(ILogger logger, ulong lun, string reason);

    [LoggerMessage(EventId = 207, Level = LogLevel.Information, Message = "LUN {Lun}: {Vendor} {Product} {Revision}, {Blocks} blocks of {BlockSize} bytes{Thin}")]
    public static partial void Opened(ILogger logger, ulong lun, string vendor, string product, string revision, ulong blocks, uint blockSize, string thin);

    [LoggerMessage(EventId = 208, Level = LogLevel.Information, Message = "LUN {Lun} rejects READ CAPACITY(16) ({Reason}); using READ CAPACITY(10)")]
    public static partial void ReadCapacity16Rejected(ILogger logger, ulong lun, SenseData? reason);
}
