package lakehouse.interop;

import java.io.IOException;
import java.time.LocalDate;
import java.time.LocalTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.paimon.Snapshot;
import org.apache.paimon.data.BinaryString;
import org.apache.paimon.data.Decimal;
import org.apache.paimon.data.InternalArray;
import org.apache.paimon.data.InternalMap;
import org.apache.paimon.data.InternalRow;
import org.apache.paimon.data.Timestamp;
import org.apache.paimon.fs.Path;
import org.apache.paimon.fs.local.LocalFileIO;
import org.apache.paimon.reader.RecordReader;
import org.apache.paimon.table.FileStoreTable;
import org.apache.paimon.table.FileStoreTableFactory;
import org.apache.paimon.table.source.ReadBuilder;
import org.apache.paimon.table.source.Split;
import org.apache.paimon.types.ArrayType;
import org.apache.paimon.types.DataField;
import org.apache.paimon.types.DataType;
import org.apache.paimon.types.MapType;
import org.apache.paimon.types.RowType;

/**
 * Reads one changelog-store table with Apache Paimon's Java library (what Flink's, Spark's and
 * Trino's Paimon connectors run): the table opened from its directory, a batch scan of a
 * snapshot (levels merged by primary key with the table's merge engine), or an incremental
 * read between two snapshots with each row's kind.
 */
final class PaimonReader {
  private PaimonReader() {}

  static void run(Args args, Json out) throws Exception {
    FileStoreTable table = FileStoreTableFactory.create(LocalFileIO.create(), new Path(args.require("table-path")));
    Map<String, String> dynamic = new HashMap<>();
    Long snapshotId = args.getLong("snapshot-id");
    String incremental = args.get("incremental");
    if (snapshotId != null) {
      dynamic.put("scan.snapshot-id", snapshotId.toString());
    }
    if (incremental != null) {
      dynamic.put("incremental-between", incremental);
      dynamic.put("incremental-between-scan-mode", args.getOr("incremental-mode", "auto"));
    }
    FileStoreTable read = dynamic.isEmpty() ? table : table.copy(dynamic);
    ReadBuilder builder = read.newReadBuilder();
    String partition = args.get("partition");
    if (partition != null) {
      // col=value[,col=value]: a partition-filtered scan prunes manifests by their partition stats.
      Map<String, String> spec = new HashMap<>();
      for (String kv : partition.split(",")) {
        String[] p = kv.split("=", 2);
        spec.put(p[0], p[1]);
      }
      builder = builder.withPartitionFilter(spec);
    }
    List<Split> splits = builder.newScan().plan().splits();
    RowType rowType = read.rowType();
    List<InternalRow.FieldGetter> getters = new ArrayList<>();
    for (int i = 0; i < rowType.getFieldCount(); i++) {
      getters.add(InternalRow.createFieldGetter(rowType.getTypeAt(i), i));
    }
    long rows = 0;
    try (RecordReader<InternalRow> reader = builder.newRead().createReader(splits)) {
      RecordReader.RecordIterator<InternalRow> batch;
      while ((batch = reader.readBatch()) != null) {
        InternalRow r;
        while ((r = batch.next()) != null) {
          out.g.writeStartObject();
          out.g.writeStringField("kind", r.getRowKind().shortString());
          out.g.writeFieldName("row");
          row(rowType, getters, r, out);
          out.g.writeEndObject();
          rows++;
        }
        batch.releaseBatch();
      }
    }
    summary(table, splits.size(), rows, out);
  }

  static void row(RowType type, List<InternalRow.FieldGetter> getters, InternalRow r, Json out) throws IOException {
    out.g.writeStartObject();
    List<DataField> fields = type.getFields();
    for (int i = 0; i < fields.size(); i++) {
      out.g.writeFieldName(fields.get(i).name());
      value(fields.get(i).type(), getters.get(i).getFieldOrNull(r), out);
    }
    out.g.writeEndObject();
  }

  static void value(DataType type, Object v, Json out) throws IOException {
    if (v == null) {
      out.g.writeNull();
      return;
    }
    switch (type.getTypeRoot()) {
      case CHAR, VARCHAR -> out.g.writeString(((BinaryString) v).toString());
      case BOOLEAN -> out.g.writeBoolean((Boolean) v);
      case BINARY, VARBINARY -> out.bytes((byte[]) v);
      case DECIMAL -> out.decimal(((Decimal) v).toBigDecimal());
      case TINYINT -> out.g.writeNumber((Byte) v);
      case SMALLINT -> out.g.writeNumber((Short) v);
      case INTEGER -> out.g.writeNumber((Integer) v);
      case BIGINT -> out.g.writeNumber((Long) v);
      case FLOAT -> out.floating((Float) v);
      case DOUBLE -> out.floating((Double) v);
      case DATE -> out.g.writeString(LocalDate.ofEpochDay((Integer) v).toString());
      case TIME_WITHOUT_TIME_ZONE -> out.time(LocalTime.ofNanoOfDay((Integer) v * 1_000_000L));
      case TIMESTAMP_WITHOUT_TIME_ZONE -> out.timestamp(((Timestamp) v).toLocalDateTime());
      case TIMESTAMP_WITH_LOCAL_TIME_ZONE -> out.g.writeString(Json.TIMESTAMP.format(((Timestamp) v).toLocalDateTime()) + "Z");
      case ARRAY -> {
        DataType element = ((ArrayType) type).getElementType();
        InternalArray a = (InternalArray) v;
        InternalArray.ElementGetter get = InternalArray.createElementGetter(element);
        out.g.writeStartArray();
        for (int i = 0; i < a.size(); i++) {
          value(element, get.getElementOrNull(a, i), out);
        }
        out.g.writeEndArray();
      }
      case MAP -> {
        MapType m = (MapType) type;
        InternalMap map = (InternalMap) v;
        InternalArray.ElementGetter key = InternalArray.createElementGetter(m.getKeyType());
        InternalArray.ElementGetter val = InternalArray.createElementGetter(m.getValueType());
        out.g.writeStartObject();
        for (int i = 0; i < map.size(); i++) {
          out.g.writeFieldName(String.valueOf(key.getElementOrNull(map.keyArray(), i)));
          value(m.getValueType(), val.getElementOrNull(map.valueArray(), i), out);
        }
        out.g.writeEndObject();
      }
      case ROW -> {
        RowType rowType = (RowType) type;
        List<InternalRow.FieldGetter> getters = new ArrayList<>();
        for (int i = 0; i < rowType.getFieldCount(); i++) {
          getters.add(InternalRow.createFieldGetter(rowType.getTypeAt(i), i));
        }
        row(rowType, getters, (InternalRow) v, out);
      }
      default -> throw new IllegalArgumentException("unsupported Paimon type " + type);
    }
  }

  static void summary(FileStoreTable table, int splits, long rows, Json out) throws IOException {
    var g = out.g;
    g.writeStartObject();
    g.writeObjectFieldStart("summary");
    g.writeNumberField("rows", rows);
    g.writeNumberField("splits", splits);
    g.writeArrayFieldStart("primary_keys");
    for (String k : table.primaryKeys()) {
      g.writeString(k);
    }
    g.writeEndArray();
    g.writeArrayFieldStart("partition_keys");
    for (String k : table.partitionKeys()) {
      g.writeString(k);
    }
    g.writeEndArray();
    g.writeArrayFieldStart("schema");
    for (DataField f : table.rowType().getFields()) {
      g.writeStartObject();
      g.writeNumberField("id", f.id());
      g.writeStringField("name", f.name());
      g.writeStringField("type", f.type().asSQLString());
      g.writeEndObject();
    }
    g.writeEndArray();
    g.writeObjectFieldStart("options");
    for (Map.Entry<String, String> e : new TreeMap<>(table.options()).entrySet()) {
      g.writeStringField(e.getKey(), e.getValue());
    }
    g.writeEndObject();
    Snapshot latest = table.snapshotManager().latestSnapshot();
    if (latest != null) {
      g.writeObjectFieldStart("latest_snapshot");
      g.writeNumberField("id", latest.id());
      g.writeStringField("commit_kind", latest.commitKind().name());
      g.writeNumberField("commit_identifier", latest.commitIdentifier());
      g.writeStringField("commit_user", latest.commitUser());
      if (latest.totalRecordCount() != null) {
        g.writeNumberField("total_record_count", latest.totalRecordCount());
      }
      g.writeObjectFieldStart("properties");
      if (latest.properties() != null) {
        for (Map.Entry<String, String> e : new TreeMap<>(latest.properties()).entrySet()) {
          g.writeStringField(e.getKey(), e.getValue());
        }
      }
      g.writeEndObject();
      g.writeEndObject();
    }
    g.writeEndObject();
    g.writeEndObject();
  }
}
