package ksdiff;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.Function;
import java.util.stream.Stream;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KGroupedTable;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.KeyValueMapper;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindowedKStream;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.BuiltInDslStoreSuppliers;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.test.TestRecord;

/**
 * The Kafka Streams side of tools/ksdiff: reads cases from standard input, runs
 * each in a TopologyTestDriver, and writes every output record to standard
 * output.
 *
 * <p>Input, one record per line, fields separated by tabs, \N for null:
 *
 * <pre>
 * case ID TOPOLOGY PARAM=VALUE,...
 * in TOPIC KEY VALUE TIMESTAMP_MS
 * end
 * </pre>
 *
 * Output: "case ID", then "out TOPIC KEY VALUE TIMESTAMP_MS INPUT" per output
 * record in the order the driver produced them (INPUT: the index of the input
 * record that led to it), then "end"; a case that fails
 * prints "error MESSAGE" before its "end".
 */
public final class KsDiff {
  private static final String NULL = "\\N";

  /** The state directory of this run: runs side by side must not share one. */
  private static Path stateDir;

  public static void main(String[] args) throws Exception {
    stateDir = Files.createTempDirectory("ksdiff-state");
    try {
      run();
    } finally {
      try (Stream<Path> paths = Files.walk(stateDir)) {
        paths.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
      }
    }
  }

  private static void run() throws Exception {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 16);
    String line;
    String id = null, topology = null;
    Map<String, String> params = null;
    List<String[]> records = new ArrayList<>();
    while ((line = in.readLine()) != null) {
      String[] f = line.split("\t", -1);
      switch (f[0]) {
        case "case":
          id = f[1];
          topology = f[2];
          params = parseParams(f.length > 3 ? f[3] : "");
          records.clear();
          break;
        case "in":
          records.add(f);
          break;
        case "end":
          out.write("case\t" + id + "\n");
          try {
            runCase(topology, params, records, out);
          } catch (Exception e) {
            out.write("error\t" + e.toString().replace('\t', ' ').replace('\n', ' ') + "\n");
          }
          out.write("end\n");
          break;
        default:
          throw new IllegalArgumentException("unknown line: " + line);
      }
    }
    out.flush();
  }

  private static Map<String, String> parseParams(String s) {
    Map<String, String> m = new HashMap<>();
    if (s.isEmpty()) {
      return m;
    }
    for (String kv : s.split(",")) {
      int i = kv.indexOf('=');
      m.put(kv.substring(0, i), kv.substring(i + 1));
    }
    return m;
  }

  private static String nul(String s) {
    return NULL.equals(s) ? null : s;
  }

  private static void runCase(String topology, Map<String, String> p, List<String[]> records, BufferedWriter out)
      throws Exception {
    StreamsBuilder b = new StreamsBuilder();
    List<String> outputs = build(b, topology, p);
    Topology t = b.build();
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, "ksdiff");
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "dummy:9092");
    props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
    props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
    // In-memory stores, for speed, except under emitStrategy(onWindowClose()):
    // Kafka Streams 4.4.0 emits no window at all with an in-memory window
    // store there (RocksDB emits them).
    if (!topology.endsWith("-onclose")) {
      props.put(StreamsConfig.DSL_STORE_SUPPLIERS_CLASS_CONFIG, BuiltInDslStoreSuppliers.InMemoryDslStoreSuppliers.class);
    }
    // Kafka Streams checks for closed windows (emitStrategy(onWindowClose()))
    // and for unmatched outer-join records at most once per wall-clock
    // interval (1 s by default); the driver's wall clock stands still, so
    // check on every record, as kstreams does.
    props.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION, 0L);
    props.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_OUTER_JOIN_SPURIOUS_RESULTS_FIX, 0L);
    try (TopologyTestDriver d = new TopologyTestDriver(t, props, Instant.EPOCH)) {
      Map<String, TestInputTopic<String, String>> inputs = new HashMap<>();
      List<TestOutputTopic<String, String>> outs = new ArrayList<>();
      for (String o : outputs) {
        outs.add(d.createOutputTopic(o, Serdes.String().deserializer(), Serdes.String().deserializer()));
      }
      for (int n = 0; n < records.size(); n++) {
        String[] r = records.get(n);
        TestInputTopic<String, String> topic = inputs.computeIfAbsent(r[1],
            name -> d.createInputTopic(name, Serdes.String().serializer(), Serdes.String().serializer()));
        topic.pipeInput(new TestRecord<>(nul(r[2]), nul(r[3]), Instant.ofEpochMilli(Long.parseLong(r[4]))));
        // Outputs are read after each input, so records of several output
        // topics keep the order they were produced in.
        for (int i = 0; i < outs.size(); i++) {
          for (TestRecord<String, String> o : outs.get(i).readRecordsToList()) {
            out.write("out\t" + outputs.get(i) + "\t" + str(o.key()) + "\t" + str(o.value()) + "\t"
                + o.timestamp() + "\t" + n + "\n");
          }
        }
      }
    }
  }

  private static String str(String s) {
    return s == null ? NULL : s;
  }

  private static long param(Map<String, String> p, String name) {
    String v = p.get(name);
    if (v == null) {
      throw new IllegalArgumentException("missing parameter " + name);
    }
    return Long.parseLong(v);
  }

  private static String windowed(Windowed<String> k) {
    return k.key() + "@" + k.window().start() + "/" + k.window().end();
  }

  /** The aggregate of the "agg" topologies: every value in order, "~" for a null. */
  private static String append(String key, String value, String agg) {
    return agg + (value == null ? "~" : value) + ";";
  }

  /** A table read from topic, materialized in a store named store. */
  private static KTable<String, String> table(StreamsBuilder b, String topic, String store) {
    return b.table(topic, Consumed.with(Serdes.String(), Serdes.String()),
        Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as(store).withKeySerde(Serdes.String()).withValueSerde(Serdes.String()));
  }

  /** The joiner of the join topologies: both values, "~" for a null. */
  private static String joined(String l, String r) {
    return (l == null ? "~" : l) + "+" + (r == null ? "~" : r);
  }

  /** Adds a windowed count or aggregation of in, named by name, writing to topic. */
  private static void windowed(KStream<String, String> in, String name, Map<String, String> p, String prefix, String topic) {
    TimeWindows w = TimeWindows.ofSizeAndGrace(Duration.ofMillis(param(p, "size")), Duration.ofMillis(param(p, "grace")))
        .advanceBy(Duration.ofMillis(param(p, "advance")));
    TimeWindowedKStream<String, String> ws = in.groupByKey(Grouped.with(Serdes.String(), Serdes.String())).windowedBy(w);
    if (name.endsWith("-onclose")) {
      ws = ws.emitStrategy(EmitStrategy.onWindowClose());
    }
    KTable<Windowed<String>, String> t;
    if (name.startsWith("count")) {
      KTable<Windowed<String>, Long> counts = ws.count(Materialized.as(prefix + "counts"));
      if (name.endsWith("-final")) {
        counts = counts.suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()));
      }
      t = counts.mapValues(v -> v == null ? null : v.toString());
    } else {
      t = ws.aggregate(() -> "", KsDiff::append,
          Materialized.<String, String, WindowStore<Bytes, byte[]>>as(prefix + "aggs").withKeySerde(Serdes.String()).withValueSerde(Serdes.String()));
      if (name.endsWith("-final")) {
        t = t.suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()));
      }
    }
    t.toStream().map((k, v) -> KeyValue.pair(windowed(k), v)).to(topic, Produced.with(Serdes.String(), Serdes.String()));
  }

  /** Adds the topology named name to b and returns its output topics. */
  private static List<String> build(StreamsBuilder b, String name, Map<String, String> p) {
    switch (name) {
      case "count":
      case "count-final":
      case "agg":
      case "agg-final": {
        KStream<String, String> in = b.stream("in", Consumed.with(Serdes.String(), Serdes.String()));
        windowed(in, name, p, "", "out");
        return List.of("out");
      }
      case "count-onclose":
      case "agg-onclose": {
        // emitStrategy(onWindowClose()) into "out", and the same aggregation
        // with suppress(untilWindowCloses) into "final": Kafka Streams 4.4.0's
        // onWindowClose misses windows that suppress emits (see docs/joins.md).
        KStream<String, String> in = b.stream("in", Consumed.with(Serdes.String(), Serdes.String()));
        String kind = name.substring(0, name.indexOf('-'));
        windowed(in, kind + "-onclose", p, "onclose-", "out");
        windowed(in, kind + "-final", p, "final-", "final");
        return List.of("out", "final");
      }
      case "stream-count":
      case "stream-agg":
      case "stream-reduce": {
        KGroupedStream<String, String> g = b.stream("in", Consumed.with(Serdes.String(), Serdes.String()))
            .groupByKey(Grouped.with(Serdes.String(), Serdes.String()));
        KTable<String, String> t;
        if (name.equals("stream-count")) {
          t = g.count().mapValues(v -> v == null ? null : v.toString());
        } else if (name.equals("stream-agg")) {
          t = g.aggregate(() -> "", KsDiff::append, Materialized.with(Serdes.String(), Serdes.String()));
        } else {
          t = g.reduce((agg, v) -> agg + "," + (v == null ? "~" : v), Materialized.with(Serdes.String(), Serdes.String()));
        }
        t.toStream().to("out", Produced.with(Serdes.String(), Serdes.String()));
        return List.of("out");
      }
      case "table-count":
      case "table-agg":
      case "table-reduce": {
        // Regroup a table by its value: each value's group holds the keys
        // that have it.
        KGroupedTable<String, String> g = table(b, "in", "tbl")
            .groupBy((k, v) -> KeyValue.pair(v, k), Grouped.with(Serdes.String(), Serdes.String()));
        KTable<String, String> t;
        if (name.equals("table-count")) {
          t = g.count().mapValues(v -> v == null ? null : v.toString());
        } else if (name.equals("table-reduce")) {
          t = g.reduce((agg, v) -> agg + "+" + v, (agg, v) -> agg + "-" + v, Materialized.with(Serdes.String(), Serdes.String()));
        } else {
          t = g.aggregate(() -> "", (k, v, agg) -> agg + "+" + v, (k, v, agg) -> agg + "-" + v,
              Materialized.with(Serdes.String(), Serdes.String()));
        }
        t.toStream().to("out", Produced.with(Serdes.String(), Serdes.String()));
        return List.of("out");
      }
      case "table": {
        table(b, "in", "tbl").toStream().to("out", Produced.with(Serdes.String(), Serdes.String()));
        return List.of("out");
      }
      case "stream-table":
      case "stream-table-left": {
        KStream<String, String> s = b.stream("stream", Consumed.with(Serdes.String(), Serdes.String()));
        KTable<String, String> t = table(b, "table", "tbl");
        KStream<String, String> j = name.endsWith("-left") ? s.leftJoin(t, KsDiff::joined) : s.join(t, KsDiff::joined);
        j.to("out", Produced.with(Serdes.String(), Serdes.String()));
        return List.of("out");
      }
      case "stream-global":
      case "stream-global-left": {
        // The stream's value vD looks up the global table's key k0D. Kafka
        // Streams maps a record's key before it drops a null value.
        KStream<String, String> s = b.stream("stream", Consumed.with(Serdes.String(), Serdes.String()));
        GlobalKTable<String, String> g = b.globalTable("global", Consumed.with(Serdes.String(), Serdes.String()),
            Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as("glob").withKeySerde(Serdes.String()).withValueSerde(Serdes.String()));
        KeyValueMapper<String, String, String> keyOf = (k, v) -> v == null ? null : "k0" + v.substring(1);
        KStream<String, String> j = name.endsWith("-left") ? s.leftJoin(g, keyOf, KsDiff::joined) : s.join(g, keyOf, KsDiff::joined);
        j.to("out", Produced.with(Serdes.String(), Serdes.String()));
        return List.of("out");
      }
      case "table-table":
      case "table-table-left":
      case "table-table-outer": {
        KTable<String, String> l = table(b, "left", "l");
        KTable<String, String> r = table(b, "right", "r");
        KTable<String, String> j;
        if (name.endsWith("-left")) {
          j = l.leftJoin(r, KsDiff::joined);
        } else if (name.endsWith("-outer")) {
          j = l.outerJoin(r, KsDiff::joined);
        } else {
          j = l.join(r, KsDiff::joined);
        }
        j.toStream().to("out", Produced.with(Serdes.String(), Serdes.String()));
        return List.of("out");
      }
      case "fk":
      case "fk-left": {
        // A left value vD refers to the right table's key k0D.
        KTable<String, String> l = table(b, "left", "l");
        KTable<String, String> r = table(b, "right", "r");
        Function<String, String> fk = v -> "k0" + v.substring(1);
        KTable<String, String> j = name.endsWith("-left") ? l.leftJoin(r, fk, KsDiff::joined) : l.join(r, fk, KsDiff::joined);
        j.toStream().to("out", Produced.with(Serdes.String(), Serdes.String()));
        return List.of("out");
      }
      case "stream-stream":
      case "stream-stream-left":
      case "stream-stream-outer": {
        KStream<String, String> l = b.stream("left", Consumed.with(Serdes.String(), Serdes.String()));
        KStream<String, String> r = b.stream("right", Consumed.with(Serdes.String(), Serdes.String()));
        JoinWindows w = JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(param(p, "diff")), Duration.ofMillis(param(p, "grace")));
        StreamJoined<String, String, String> sj = StreamJoined.with(Serdes.String(), Serdes.String(), Serdes.String());
        KStream<String, String> j;
        if (name.endsWith("-left")) {
          j = l.leftJoin(r, KsDiff::joined, w, sj);
        } else if (name.endsWith("-outer")) {
          j = l.outerJoin(r, KsDiff::joined, w, sj);
        } else {
          j = l.join(r, KsDiff::joined, w, sj);
        }
        j.to("out", Produced.with(Serdes.String(), Serdes.String()));
        return List.of("out");
      }
      default:
        throw new IllegalArgumentException("unknown topology " + name);
    }
  }
}
