package lakehouse.interop;

import java.io.IOException;
import java.math.BigDecimal;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.iceberg.DataFile;
import org.apache.iceberg.DeleteFile;
import org.apache.iceberg.FileFormat;
import org.apache.iceberg.PartitionKey;
import org.apache.iceberg.PartitionSpec;
import org.apache.iceberg.Schema;
import org.apache.iceberg.Table;
import org.apache.iceberg.catalog.Namespace;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.data.GenericAppenderFactory;
import org.apache.iceberg.data.GenericRecord;
import org.apache.iceberg.data.Record;
import org.apache.iceberg.deletes.PositionDelete;
import org.apache.iceberg.deletes.PositionDeleteWriter;
import org.apache.iceberg.io.DataWriter;
import org.apache.iceberg.io.OutputFileFactory;
import org.apache.iceberg.jdbc.JdbcCatalog;
import org.apache.iceberg.types.Types;

/**
 * Writes a table with Java Iceberg into our catalog, for our readers and commit layer to take
 * over: `id long, region string, v string, amount decimal(10, 2), at timestamptz`, identity
 * partitioned by region, format v2. Snapshot 1 appends ids 0..rows-1 (even ids in `eu`, odd in
 * `us`, one data file each); snapshot 2 is a RowDelta of position deletes: ids divisible by 3
 * in `eu`, by 5 in `us`. Prints {"summary": {"snapshots": [...], "deleted": [...]}}.
 *
 * <pre>
 * java-readers iceberg-write --catalog-url URL --warehouse DIR --table NS.NAME --rows N
 * </pre>
 */
final class IcebergWriter {
  private IcebergWriter() {}

  static final Schema SCHEMA =
      new Schema(
          Types.NestedField.required(1, "id", Types.LongType.get()),
          Types.NestedField.required(2, "region", Types.StringType.get()),
          Types.NestedField.optional(3, "v", Types.StringType.get()),
          Types.NestedField.optional(4, "amount", Types.DecimalType.of(10, 2)),
          Types.NestedField.optional(5, "at", Types.TimestampType.withZone()));

  static void run(Args args, Json out) throws Exception {
    long rows = Long.parseLong(args.require("rows"));
    try (JdbcCatalog catalog = IcebergReader.open(args)) {
      TableIdentifier id = TableIdentifier.parse(args.require("table"));
      if (!catalog.namespaceExists(id.namespace())) {
        catalog.createNamespace(Namespace.of(id.namespace().levels()));
      }
      PartitionSpec spec = PartitionSpec.builderFor(SCHEMA).identity("region").build();
      Table table =
          catalog.createTable(
              id, SCHEMA, spec, Map.of("format-version", "2", "write.parquet.compression-codec", "zstd"));
      GenericAppenderFactory factory = new GenericAppenderFactory(table.schema(), table.spec());
      OutputFileFactory files = OutputFileFactory.builderFor(table, 1, 1).format(FileFormat.PARQUET).build();

      // Snapshot 1: one data file per region; positions remembered for the deletes.
      List<DataFile> dataFiles = new ArrayList<>();
      List<List<Long>> idsByFile = new ArrayList<>();
      for (String region : List.of("eu", "us")) {
        PartitionKey key = new PartitionKey(table.spec(), table.schema());
        GenericRecord probe = GenericRecord.create(table.schema());
        probe.setField("region", region);
        key.partition(probe);
        DataWriter<Record> w = factory.newDataWriter(files.newOutputFile(table.spec(), key), FileFormat.PARQUET, key);
        List<Long> ids = new ArrayList<>();
        try (w) {
          for (long i = region.equals("eu") ? 0 : 1; i < rows; i += 2) {
            w.write(record(table.schema(), i, region));
            ids.add(i);
          }
        }
        dataFiles.add(w.toDataFile());
        idsByFile.add(ids);
      }
      var append = table.newAppend();
      dataFiles.forEach(append::appendFile);
      append.commit();

      // Snapshot 2: position deletes in both files.
      List<Long> deleted = new ArrayList<>();
      var delta = table.newRowDelta();
      for (int f = 0; f < dataFiles.size(); f++) {
        DataFile data = dataFiles.get(f);
        int divisor = f == 0 ? 3 : 5;
        PartitionKey key = new PartitionKey(table.spec(), table.schema());
        GenericRecord probe = GenericRecord.create(table.schema());
        probe.setField("region", f == 0 ? "eu" : "us");
        key.partition(probe);
        PositionDeleteWriter<Record> w =
            factory.newPosDeleteWriter(files.newOutputFile(table.spec(), key), FileFormat.PARQUET, key);
        try (w) {
          List<Long> ids = idsByFile.get(f);
          for (int pos = 0; pos < ids.size(); pos++) {
            if (ids.get(pos) % divisor == 0) {
              PositionDelete<Record> d = PositionDelete.create();
              w.write(d.set(data.location(), pos, null));
              deleted.add(ids.get(pos));
            }
          }
        }
        DeleteFile deletes = w.toDeleteFile();
        delta.addDeletes(deletes);
      }
      delta.commit();
      table.refresh();

      var g = out.g;
      g.writeStartObject();
      g.writeObjectFieldStart("summary");
      g.writeArrayFieldStart("snapshots");
      for (var s : table.snapshots()) {
        g.writeNumber(s.snapshotId());
      }
      g.writeEndArray();
      g.writeArrayFieldStart("deleted");
      for (long d : deleted) {
        g.writeNumber(d);
      }
      g.writeEndArray();
      g.writeEndObject();
      g.writeEndObject();
    }
  }

  /** The row of `id`: also what the Rust test expects. */
  static Record record(Schema schema, long id, String region) throws IOException {
    GenericRecord r = GenericRecord.create(schema);
    r.setField("id", id);
    r.setField("region", region);
    r.setField("v", id % 7 == 0 ? null : "j" + id);
    r.setField("amount", BigDecimal.valueOf(id * 125, 2));
    r.setField("at", OffsetDateTime.ofInstant(Instant.ofEpochSecond(1_764_000_000L + id, 1_000L * id), ZoneOffset.UTC));
    return r;
  }
}
