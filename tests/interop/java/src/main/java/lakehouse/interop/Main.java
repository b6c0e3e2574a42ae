package lakehouse.interop;

import java.util.Arrays;

/**
 * Independent Java readers of the lake, for the interop tests.
 *
 * <pre>
 * java-readers iceberg --catalog-url sqlite:///abs/catalog.db --warehouse /abs/warehouse --table bronze.orders
 *                      [--catalog-name lakehouse] [--snapshot-id N] [--append-from A --append-to B]
 * java-readers paimon  --table-path /abs/store/silver.db/orders
 *                      [--snapshot-id N] [--partition col=value[,col=value]] [--incremental A,B [--incremental-mode changelog|delta|diff|auto]]
 * java-readers iceberg-write --catalog-url URL --warehouse DIR --table NS.NAME --rows N
 * </pre>
 *
 * Output: one JSON object per line on stdout, {"row": {...}} for each row (with "kind" for
 * Paimon's row kind), then one {"summary": {...}} line with what the library saw (snapshots,
 * schema, planned files). Exit status 1 with the Java exception on stderr when the library
 * refuses the table: that is a finding, not a test bug.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 0) {
      usage();
    }
    String[] rest = Arrays.copyOfRange(args, 1, args.length);
    Args parsed = Args.parse(rest);
    try (Json out = new Json(System.out)) {
      switch (args[0]) {
        case "iceberg" -> IcebergReader.run(parsed, out);
        case "paimon" -> PaimonReader.run(parsed, out);
        case "iceberg-write" -> IcebergWriter.run(parsed, out);
        default -> usage();
      }
    }
  }

  static void usage() {
    System.err.println(
        "usage: java-readers iceberg --catalog-url URL --warehouse DIR --table NS.NAME [--catalog-name N]"
            + " [--snapshot-id N] [--append-from A --append-to B]\n"
            + "       java-readers paimon --table-path DIR [--snapshot-id N] [--partition col=value,...]"
            + " [--incremental A,B [--incremental-mode changelog|delta|diff|auto]]");
    System.exit(2);
  }
}
