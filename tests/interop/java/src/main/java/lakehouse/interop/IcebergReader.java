package lakehouse.interop;

import java.io.IOException;
import java.math.BigDecimal;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.DeleteFile;
import org.apache.iceberg.FileScanTask;
import org.apache.iceberg.HasTableOperations;
import org.apache.iceberg.PartitionField;
import org.apache.iceberg.Schema;
import org.apache.iceberg.Snapshot;
import org.apache.iceberg.Table;
import org.apache.iceberg.TableScan;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.data.IcebergGenerics;
import org.apache.iceberg.data.Record;
import org.apache.iceberg.data.parquet.GenericParquetReaders;
import org.apache.iceberg.io.CloseableIterable;
import org.apache.iceberg.jdbc.JdbcCatalog;
import org.apache.iceberg.parquet.Parquet;
import org.apache.iceberg.types.Type;
import org.apache.iceberg.types.Types;

/**
 * Reads one table through Iceberg's own JdbcCatalog (the SQL catalog layout our writer and
 * pyiceberg share) and IcebergGenerics, which plans the scan and applies position and equality
 * deletes as Spark's and Trino's Iceberg readers do.
 */
final class IcebergReader {
  private IcebergReader() {}

  static void run(Args args, Json out) throws Exception {
    try (JdbcCatalog catalog = open(args)) {
      Table table = catalog.loadTable(TableIdentifier.parse(args.require("table")));
      Long snapshotId = args.getLong("snapshot-id");
      Long appendFrom = args.getLong("append-from");
      Long appendTo = args.getLong("append-to");
      long rows = 0;
      Map<String, Object> planned = new TreeMap<>();
      if (appendTo != null) {
        rows = readAppends(table, appendFrom, appendTo, out, planned);
      } else {
        rows = readSnapshot(table, snapshotId, out, planned);
      }
      summary(table, snapshotId, rows, planned, out);
    }
  }

  /** JdbcCatalog on our catalog URL: sqlite://FILE, postgres://USER:PASS@HOST:PORT/DB or jdbc:... */
  static JdbcCatalog open(Args args) {
    String url = args.require("catalog-url");
    Map<String, String> props = new HashMap<>();
    if (url.startsWith("sqlite://")) {
      props.put("uri", "jdbc:sqlite:" + url.substring("sqlite://".length()));
    } else if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
      URI u = URI.create(url);
      props.put("uri", "jdbc:postgresql://" + u.getHost() + ":" + (u.getPort() < 0 ? 5432 : u.getPort()) + u.getPath());
      if (u.getRawUserInfo() != null) {
        String[] userPass = u.getRawUserInfo().split(":", 2);
        props.put("jdbc.user", URLDecoder.decode(userPass[0], StandardCharsets.UTF_8));
        if (userPass.length > 1) {
          props.put("jdbc.password", URLDecoder.decode(userPass[1], StandardCharsets.UTF_8));
        }
      }
    } else {
      props.put("uri", url);
    }
    props.put("warehouse", args.require("warehouse"));
    // Our catalog has the iceberg_type column (the V1 layout, as pyiceberg's).
    props.put("jdbc.schema-version", "V1");
    JdbcCatalog catalog = new JdbcCatalog();
    catalog.setConf(new Configuration());
    catalog.initialize(args.getOr("catalog-name", "lakehouse"), props);
    return catalog;
  }

  static long readSnapshot(Table table, Long snapshotId, Json out, Map<String, Object> planned) throws IOException {
    if (table.currentSnapshot() == null) {
      planned.put("data_files", 0);
      return 0;
    }
    // What the planner matched: data files, and delete files per data file.
    TableScan scan = table.newScan();
    if (snapshotId != null) {
      scan = scan.useSnapshot(snapshotId);
    }
    int dataFiles = 0;
    int withDeletes = 0;
    Set<String> deleteFiles = new HashSet<>();
    long deleteRecords = 0;
    try (CloseableIterable<FileScanTask> tasks = scan.planFiles()) {
      for (FileScanTask task : tasks) {
        dataFiles++;
        if (!task.deletes().isEmpty()) {
          withDeletes++;
        }
        for (DeleteFile d : task.deletes()) {
          if (deleteFiles.add(d.location())) {
            deleteRecords += d.recordCount();
          }
        }
      }
    }
    planned.put("data_files", dataFiles);
    planned.put("data_files_with_deletes", withDeletes);
    planned.put("delete_files", deleteFiles.size());
    planned.put("delete_records", deleteRecords);

    IcebergGenerics.ScanBuilder builder = IcebergGenerics.read(table);
    if (snapshotId != null) {
      builder = builder.useSnapshot(snapshotId);
    }
    // The records of files with deletes also carry the reader's `_pos` column: print the
    // snapshot's own columns only.
    Schema schema = snapshotId == null ? table.schema() : table.schemas().get(table.snapshot(snapshotId).schemaId());
    long rows = 0;
    try (CloseableIterable<Record> records = builder.build()) {
      for (Record r : records) {
        row(schema, r, out);
        rows++;
      }
    }
    return rows;
  }

  /**
   * The rows appended after `from` (exclusive; the table's first snapshot if absent) up to
   * `to`: Iceberg's incremental append scan, what Spark's and Flink's streaming readers do.
   */
  static long readAppends(Table table, Long from, long to, Json out, Map<String, Object> planned) throws IOException {
    var scan = table.newIncrementalAppendScan().toSnapshot(to);
    if (from != null) {
      scan = scan.fromSnapshotExclusive(from);
    }
    Schema schema = table.schemas().get(table.snapshot(to).schemaId());
    long rows = 0;
    int dataFiles = 0;
    try (CloseableIterable<FileScanTask> tasks = scan.planFiles()) {
      for (FileScanTask task : tasks) {
        dataFiles++;
        if (!task.deletes().isEmpty()) {
          throw new IllegalStateException("an append scan planned deletes for " + task.file().location());
        }
        try (CloseableIterable<Record> records =
            Parquet.read(table.io().newInputFile(task.file().location()))
                .project(schema)
                .split(task.start(), task.length())
                .createReaderFunc(fileSchema -> GenericParquetReaders.buildReader(schema, fileSchema))
                .build()) {
          for (Record r : records) {
            row(schema, r, out);
            rows++;
          }
        }
      }
    }
    planned.put("data_files", dataFiles);
    return rows;
  }

  static void row(Schema schema, Record r, Json out) throws IOException {
    out.g.writeStartObject();
    out.g.writeObjectFieldStart("row");
    for (Types.NestedField f : schema.columns()) {
      out.g.writeFieldName(f.name());
      value(f.type(), r.getField(f.name()), out);
    }
    out.g.writeEndObject();
    out.g.writeEndObject();
  }

  static void struct(Record r, Json out) throws IOException {
    out.g.writeStartObject();
    List<Types.NestedField> fields = r.struct().fields();
    for (int i = 0; i < fields.size(); i++) {
      out.g.writeFieldName(fields.get(i).name());
      value(fields.get(i).type(), r.get(i), out);
    }
    out.g.writeEndObject();
  }

  static void value(Type type, Object v, Json out) throws IOException {
    if (v == null) {
      out.g.writeNull();
      return;
    }
    switch (type.typeId()) {
      case BOOLEAN -> out.g.writeBoolean((Boolean) v);
      case INTEGER -> out.g.writeNumber((Integer) v);
      case LONG -> out.g.writeNumber((Long) v);
      case FLOAT -> out.floating((Float) v);
      case DOUBLE -> out.floating((Double) v);
      case DECIMAL -> out.decimal((BigDecimal) v);
      case DATE -> out.g.writeString(((LocalDate) v).toString());
      case TIME -> out.time((LocalTime) v);
      case TIMESTAMP -> {
        if (v instanceof OffsetDateTime t) {
          out.timestampUtc(t);
        } else {
          out.timestamp((LocalDateTime) v);
        }
      }
      case STRING -> out.g.writeString(v.toString());
      case UUID -> out.g.writeString(((UUID) v).toString());
      case FIXED -> out.bytes((byte[]) v);
      case BINARY -> {
        ByteBuffer b = ((ByteBuffer) v).duplicate();
        byte[] bytes = new byte[b.remaining()];
        b.get(bytes);
        out.bytes(bytes);
      }
      case STRUCT -> struct((Record) v, out);
      case LIST -> {
        out.g.writeStartArray();
        for (Object e : (List<?>) v) {
          value(type.asListType().elementType(), e, out);
        }
        out.g.writeEndArray();
      }
      case MAP -> {
        // Keys as strings: JSON objects have no other kind.
        out.g.writeStartObject();
        for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
          out.g.writeFieldName(String.valueOf(e.getKey()));
          value(type.asMapType().valueType(), e.getValue(), out);
        }
        out.g.writeEndObject();
      }
      default -> throw new IllegalArgumentException("unsupported Iceberg type " + type);
    }
  }

  static void summary(Table table, Long snapshotId, long rows, Map<String, Object> planned, Json out)
      throws IOException {
    var g = out.g;
    var meta = ((HasTableOperations) table).operations().current();
    g.writeStartObject();
    g.writeObjectFieldStart("summary");
    g.writeNumberField("rows", rows);
    g.writeNumberField("format_version", meta.formatVersion());
    g.writeNumberField("last_sequence_number", meta.lastSequenceNumber());
    if (table.currentSnapshot() != null) {
      g.writeNumberField("current_snapshot_id", table.currentSnapshot().snapshotId());
    }
    if (snapshotId != null) {
      g.writeNumberField("snapshot_id", snapshotId);
    }
    g.writeStringField("location", table.location());
    for (Map.Entry<String, Object> e : planned.entrySet()) {
      g.writeNumberField(e.getKey(), ((Number) e.getValue()).longValue());
    }
    g.writeArrayFieldStart("schema");
    for (Types.NestedField f : table.schema().columns()) {
      g.writeStartObject();
      g.writeNumberField("id", f.fieldId());
      g.writeStringField("name", f.name());
      g.writeStringField("type", f.type().toString());
      g.writeBooleanField("required", f.isRequired());
      g.writeEndObject();
    }
    g.writeEndArray();
    g.writeArrayFieldStart("partition_spec");
    for (PartitionField f : table.spec().fields()) {
      g.writeString(f.transform() + "(" + table.schema().findColumnName(f.sourceId()) + ")");
    }
    g.writeEndArray();
    g.writeObjectFieldStart("properties");
    for (Map.Entry<String, String> e : new TreeMap<>(table.properties()).entrySet()) {
      g.writeStringField(e.getKey(), e.getValue());
    }
    g.writeEndObject();
    g.writeArrayFieldStart("snapshots");
    for (Snapshot s : table.snapshots()) {
      g.writeStartObject();
      g.writeNumberField("snapshot_id", s.snapshotId());
      if (s.parentId() != null) {
        g.writeNumberField("parent_id", s.parentId());
      }
      g.writeNumberField("sequence_number", s.sequenceNumber());
      g.writeNumberField("timestamp_ms", s.timestampMillis());
      g.writeStringField("operation", s.operation());
      g.writeObjectFieldStart("summary");
      for (Map.Entry<String, String> e : new TreeMap<>(s.summary()).entrySet()) {
        g.writeStringField(e.getKey(), e.getValue());
      }
      g.writeEndObject();
      g.writeEndObject();
    }
    g.writeEndArray();
    g.writeEndObject();
    g.writeEndObject();
  }
}
