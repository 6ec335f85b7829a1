using System.Text.Json;
using System.Text.Json.Serialization;

namespace IserBlockd.Daemon.Configuration.Document;

/// <summary>A node's <c>luns</c>: an array of LUN mappings, or a word (<c>"all"</c>: every disk LUN of the target, exposed
/// as the node's <c>lunTemplate</c> says).</summary>
[JsonConverter(typeof(LunsDocumentConverter))]
public sealed class LunsDocument
{
    public string? Word { get; init; }
    public List<LunDocument?>? List { get; init; }
}

/// <summary>Reads and writes <see cref="LunsDocument"/> as the JSON string or array it is (source-generated metadata, no reflection).</summary>
public sealed class LunsDocumentConverter : JsonConverter<LunsDocument>
{
    public override LunsDocument? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Null => null,
        JsonTokenType.String => new LunsDocument { Word = reader.GetString() },
        JsonTokenType.StartArray => new LunsDocument { List = JsonSerializer.Deserialize(ref reader, ConfigJsonContext.Default.ListLunDocument) },
        _ => throw new JsonException("luns: expected \"all\" or an array of LUN mappings"),
    };

    public override void Write(Utf8JsonWriter writer, LunsDocument value, JsonSerializerOptions options)
    {
        if (value.Word != null) writer.WriteStringValue(value.Word);
        else JsonSerializer.Serialize(writer, value.List ?? [], ConfigJsonContext.Default.ListLunDocument);
    }
}
