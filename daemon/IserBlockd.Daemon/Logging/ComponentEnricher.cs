using Serilog.Core;
using Serilog.Events;

namespace IserBlockd.Daemon.Logging;

/// <summary>Adds "Component": the last part of the logger's SourceContext (a class name), short enough
/// for a console line; the full namespace still selects per-component levels.</summary>
internal sealed class ComponentEnricher : ILogEventEnricher
{
    public const string PropertyName = "Component";

    public void Enrich(LogEvent logEvent, ILogEventPropertyFactory propertyFactory)
    {
        if (logEvent.Properties.TryGetValue(Constants.SourceContextPropertyName, out var value)
            && value is ScalarValue { Value: string context })
        {
            var dot = context.LastIndexOf('.');
            var generic = context.IndexOf('`');
            var name = dot < 0 ? context : context[(dot + 1)..];
            if (generic > dot) name = context[(dot + 1)..generic];
            logEvent.AddPropertyIfAbsent(propertyFactory.CreateProperty(PropertyName, name));
        }
        else
        {
            logEvent.AddPropertyIfAbsent(propertyFactory.CreateProperty(PropertyName, "iserblockd"));
        }
    }
}
