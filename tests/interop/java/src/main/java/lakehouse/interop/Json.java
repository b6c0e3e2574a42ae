package lakehouse.interop;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.io.SerializedString;
import java.io.IOException;
import java.io.OutputStream;
import java.math.BigDecimal;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.HexFormat;

/**
 * JSON lines with one spelling per type, shared by both readers so the Rust test compares
 * values, not formatting: integers as numbers, decimals as plain strings with their scale
 * ("19.90"), dates "2026-11-27", times "10:00:00.000000", timestamps
 * "2026-11-27T10:00:00.000000" (with "Z" for UTC-adjusted ones), binary as lower-case hex,
 * non-finite floats as strings.
 */
final class Json implements AutoCloseable {
  static final DateTimeFormatter TIMESTAMP = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSSSS");
  static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss.SSSSSS");

  final JsonGenerator g;

  Json(OutputStream out) throws IOException {
    g = new JsonFactory().createGenerator(out);
    g.configure(JsonGenerator.Feature.AUTO_CLOSE_TARGET, false);
    g.setRootValueSeparator(new SerializedString("\n"));
  }

  void decimal(BigDecimal d) throws IOException {
    g.writeString(d.toPlainString());
  }

  void timestamp(LocalDateTime t) throws IOException {
    g.writeString(TIMESTAMP.format(t));
  }

  void timestampUtc(OffsetDateTime t) throws IOException {
    g.writeString(TIMESTAMP.format(t.withOffsetSameInstant(ZoneOffset.UTC).toLocalDateTime()) + "Z");
  }

  void time(LocalTime t) throws IOException {
    g.writeString(TIME.format(t));
  }

  void bytes(byte[] b) throws IOException {
    g.writeString(HexFormat.of().formatHex(b));
  }

  void floating(double d) throws IOException {
    if (Double.isFinite(d)) {
      g.writeNumber(d);
    } else {
      g.writeString(Double.toString(d));
    }
  }

  void floating(float f) throws IOException {
    if (Float.isFinite(f)) {
      // Through the shortest decimal string of the float, so 0.1f prints as 0.1.
      g.writeNumber(new BigDecimal(Float.toString(f)));
    } else {
      g.writeString(Float.toString(f));
    }
  }

  @Override
  public void close() throws IOException {
    g.writeRaw('\n');
    g.close();
    System.out.flush();
  }
}
