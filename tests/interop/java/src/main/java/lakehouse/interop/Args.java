package lakehouse.interop;

import java.util.HashMap;
import java.util.Map;

/** `--key value` flags. */
final class Args {
  private final Map<String, String> values = new HashMap<>();

  static Args parse(String[] args) {
    Args a = new Args();
    for (int i = 0; i < args.length; i += 2) {
      if (!args[i].startsWith("--") || i + 1 >= args.length) {
        throw new IllegalArgumentException("expected --flag value, got " + args[i]);
      }
      a.values.put(args[i].substring(2), args[i + 1]);
    }
    return a;
  }

  String get(String name) {
    return values.get(name);
  }

  String require(String name) {
    String v = values.get(name);
    if (v == null) {
      throw new IllegalArgumentException("--" + name + " is required");
    }
    return v;
  }

  String getOr(String name, String fallback) {
    return values.getOrDefault(name, fallback);
  }

  Long getLong(String name) {
    String v = values.get(name);
    return v == null ? null : Long.parseLong(v);
  }
}
