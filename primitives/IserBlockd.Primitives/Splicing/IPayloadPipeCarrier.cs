namespace IserBlockd.Primitives.Splicing;

/// <summary>
/// The owner of a payload buffer (its <see cref="System.Buffers.MemoryManager{T}"/>) that may keep the buffer's
/// leading bytes in a <see cref="Splicing.PayloadPipe"/> instead: a receive that finds the owner of the memory it was
/// given (<see cref="PayloadPipe.Behind"/>) may splice into the pipe rather than copy into the memory.
/// </summary>
public interface IPayloadPipeCarrier
{
    /// <summary>The pipe the buffer's bytes may go into now, or null (the buffer takes them as usual).</summary>
    PayloadPipe? PayloadPipe { get; }

    /// <summary>The buffer takes its bytes itself from now on: what the pipe holds moves into it, and the pipe is no
    /// longer offered.</summary>
    void DetachPipe();
}
