using IserBlockd.Rdma.Interop;

namespace IserBlockd.Rdma.Completion;

/// <summary>
/// Receives the completions of the work requests posted with its id from a <see cref="WorkRequestTable"/>.
/// Called on the event loop thread: complete what waits and return, never block.
/// </summary>
public interface IWorkCompletionHandler
{
    void OnWorkCompletion(in IbvWc completion);
}
