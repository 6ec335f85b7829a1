using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace IserBlockd.Daemon.Configuration;

/// <summary>
/// Checks a parsed JSON document against the shape of the configuration types, using the
/// source-generated metadata (no reflection): unknown and duplicate fields and wrong value types are
/// all reported at once with their paths, where the serializer alone would stop at the first one.
/// </summary>
internal static class ConfigSchemaChecker
{
    public static void Check(JsonElement element, JsonTypeInfo typeInfo, string path, List<ConfigError> errors)
    {
        if (element.ValueKind == JsonValueKind.Null)
            return; // every configuration member is optional; the validator decides what is required
        if (typeInfo.Type == typeof(Document.LunsDocument))
        {
            // A word (the validator knows which) or an array of LUN mappings.
            if (element.ValueKind == JsonValueKind.Array)
                Check(element, ConfigJsonContext.Default.ListLunDocument, path, errors);
            else if (element.ValueKind != JsonValueKind.String)
                errors.Add(new(path, $"expected \"all\" or an array of LUN mappings, got {Describe(element)}"));
            return;
        }

        switch (typeInfo.Kind)
        {
            case JsonTypeInfoKind.Object:
                CheckObject(element, typeInfo, path, errors);
                break;
            case JsonTypeInfoKind.Enumerable:
                if (element.ValueKind != JsonValueKind.Array)
                {
                    errors.Add(new(path, $"expected an array, got {Describe(element)}"));
                    return;
                }
                var itemInfo = typeInfo.Options.GetTypeInfo(typeInfo.ElementType!);
                var index = 0;
                foreach (var item in element.EnumerateArray())
                    Check(item, itemInfo, $"{path}[{index++}]", errors);
                break;
            case JsonTypeInfoKind.Dictionary:
                if (element.ValueKind != JsonValueKind.Object)
                {
                    errors.Add(new(path, $"expected an object, got {Describe(element)}"));
                    return;
                }
                var valueInfo = typeInfo.Options.GetTypeInfo(typeInfo.ElementType!);
                foreach (var member in element.EnumerateObject())
                    Check(member.Value, valueInfo, $"{path}[\"{member.Name}\"]", errors);
                break;
            default:
                CheckValue(element, Nullable.GetUnderlyingType(typeInfo.Type) ?? typeInfo.Type, path, errors);
                break;
        }
    }

    private static void CheckObject(JsonElement element, JsonTypeInfo typeInfo, string path, List<ConfigError> errors)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new(path, $"expected an object, got {Describe(element)}"));
            return;
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var member in element.EnumerateObject())
        {
            var memberPath = path.Length == 0 ? member.Name : $"{path}.{member.Name}";
            if (!seen.Add(member.Name))
            {
                errors.Add(new(memberPath, "duplicate field"));
                continue;
            }
            var property = typeInfo.Properties.FirstOrDefault(p => p.Name == member.Name);
            if (property == null)
            {
                errors.Add(new(memberPath, UnknownField(member.Name, typeInfo)));
                continue;
            }
            Check(member.Value, typeInfo.Options.GetTypeInfo(property.PropertyType), memberPath, errors);
        }
    }

    private static string UnknownField(string name, JsonTypeInfo typeInfo)
    {
        var sameButCase = typeInfo.Properties.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));
        if (sameButCase != null)
            return $"unknown field (did you mean \"{sameButCase.Name}\"? names are case-sensitive)";
        return "unknown field; known fields here: " + string.Join(", ", typeInfo.Properties.Select(p => p.Name));
    }

    private static void CheckValue(JsonElement element, Type type, string path, List<ConfigError> errors)
    {
        if (type == typeof(string))
        {
            if (element.ValueKind != JsonValueKind.String)
                errors.Add(new(path, $"expected a string, got {Describe(element)}"));
        }
        else if (type == typeof(bool))
        {
            if (element.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                errors.Add(new(path, $"expected true or false, got {Describe(element)}"));
        }
        else if (type == typeof(int))
        {
            if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt32(out _))
                errors.Add(new(path, $"expected an integer, got {Describe(element)}"));
        }
        else if (type == typeof(double))
        {
            if (element.ValueKind != JsonValueKind.Number)
                errors.Add(new(path, $"expected a number, got {Describe(element)}"));
        }
        else
        {
            throw new InvalidOperationException($"The configuration schema uses {type}, which {nameof(ConfigSchemaChecker)} does not know.");
        }
    }

    private static string Describe(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => $"the string {Truncate(element.GetRawText())}",
        JsonValueKind.Number => $"the number {Truncate(element.GetRawText())}",
        JsonValueKind.True or JsonValueKind.False => element.GetRawText(),
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => element.ValueKind.ToString().ToLowerInvariant(),
    };

    private static string Truncate(string text) => text.Length <= 40 ? text : text[..37] + "...";
}
