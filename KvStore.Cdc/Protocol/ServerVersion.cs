using System.Globalization;

namespace KvStore.Cdc.Protocol;

/// <summary>A server version string split into flavour and numbers (<c>5.5.5-10.11.19-MariaDB-log</c> is MariaDB 10.11.19).</summary>
internal readonly record struct ServerVersion(int Major, int Minor, int Patch, bool IsMariaDb, string Text)
{
    private const string MariaDbCompatibilityPrefix = "5.5.5-";

    public static ServerVersion Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var isMariaDb = text.Contains("MariaDB", StringComparison.OrdinalIgnoreCase);
        var numbers = text.AsSpan();

        // MariaDB 10+ prefixes its real version with "5.5.5-" so that old clients do not mistake it for MySQL 10.
        if (isMariaDb && numbers.StartsWith(MariaDbCompatibilityPrefix, StringComparison.Ordinal))
        {
            numbers = numbers[MariaDbCompatibilityPrefix.Length..];
        }

        var major = ReadNumber(ref numbers);
        var minor = Skip(ref numbers) ? ReadNumber(ref numbers) : 0;
        var patch = Skip(ref numbers) ? ReadNumber(ref numbers) : 0;
        return new ServerVersion(major, minor, patch, isMariaDb, text);
    }

    public bool IsAtLeast(int major, int minor, int patch) =>
        Major != major ? Major > major : Minor != minor ? Minor > minor : Patch >= patch;

    /// <summary>"MariaDB 10.11.19" / "MySQL 8.0.36".</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{(IsMariaDb ? "MariaDB" : "MySQL")} {Major}.{Minor}.{Patch}");

    private static int ReadNumber(ref ReadOnlySpan<char> text)
    {
        var digits = 0;
        while (digits < text.Length && char.IsAsciiDigit(text[digits]))
        {
            digits++;
        }

        var value = digits == 0 ? 0 : int.Parse(text[..Math.Min(digits, 9)], NumberStyles.None, CultureInfo.InvariantCulture);
        text = text[digits..];
        return value;
    }

    private static bool Skip(ref ReadOnlySpan<char> text)
    {
        if (text.Length > 1 && text[0] == '.' && char.IsAsciiDigit(text[1]))
        {
            text = text[1..];
            return true;
        }

        return false;
    }
}
