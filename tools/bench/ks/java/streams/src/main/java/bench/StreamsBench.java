package bench;

import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The Kafka Streams side of tools/bench/ks. One scenario per process:
 *
 * <pre>java -cp 'target/classes:target/lib/*' bench.StreamsBench SCENARIO BROKERS IN OUT APP_ID STATE_DIR THREADS COMMIT_MS [CACHE_BYTES]</pre>
 *
 * Scenarios (the same as tools/bench/ks/app): stateless (upper-case the value, drop keys ending
 * in '7'), count (count by key, RocksDB store), window (1-minute tumbling count, RocksDB window
 * store), slow (5 ms sleep per record). The record cache is off (statestore.cache.max.bytes=0) so
 * that every update is emitted, as kstreams does: both sides write one output record per input.
 * CACHE_BYTES, when given, turns the cache on with that size (Kafka Streams' default is 10 MiB):
 * updates of a key are then merged until the cache is flushed (at the latest on commit).
 */
public final class StreamsBench {
  public static void main(String[] args) throws Exception {
    if (args.length != 8 && args.length != 9) {
      System.err.println("usage: StreamsBench SCENARIO BROKERS IN OUT APP_ID STATE_DIR THREADS COMMIT_MS [CACHE_BYTES]");
      System.exit(2);
    }
    String scenario = args[0], brokers = args[1], in = args[2], out = args[3], appId = args[4], stateDir = args[5];
    int threads = Integer.parseInt(args[6]);
    long commitMs = Long.parseLong(args[7]);
    long cacheBytes = args.length > 8 ? Long.parseLong(args[8]) : 0L;

    StreamsBuilder b = new StreamsBuilder();
    KStream<byte[], byte[]> src = b.stream(in, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()));
    switch (scenario) {
      case "stateless":
        src.filter((k, v) -> !endsWith7(k)).mapValues(StreamsBench::upper)
            .to(out, Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
        break;
      case "count":
        src.groupByKey(Grouped.with(Serdes.ByteArray(), Serdes.ByteArray()))
            .count(Materialized.<byte[], Long, KeyValueStore<Bytes, byte[]>>as("counts")
                .withKeySerde(Serdes.ByteArray()).withValueSerde(Serdes.Long()))
            .toStream().to(out, Produced.with(Serdes.ByteArray(), Serdes.Long()));
        break;
      case "window":
        src.groupByKey(Grouped.with(Serdes.ByteArray(), Serdes.ByteArray()))
            .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMinutes(1)))
            .count(Materialized.<byte[], Long, WindowStore<Bytes, byte[]>>as("wcounts")
                .withKeySerde(Serdes.ByteArray()).withValueSerde(Serdes.Long()))
            .toStream().to(out, Produced.with(
                WindowedSerdes.timeWindowedSerdeFrom(byte[].class, Duration.ofMinutes(1).toMillis()), Serdes.Long()));
        break;
      case "slow":
        src.mapValues(v -> {
          try {
            Thread.sleep(5);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          return v;
        }).to(out, Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
        break;
      default:
        System.err.println("unknown scenario " + scenario);
        System.exit(2);
    }

    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, commitMs);
    p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, cacheBytes);
    p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

    KafkaStreams streams = new KafkaStreams(b.build(), p);
    CountDownLatch done = new CountDownLatch(1);
    streams.setStateListener((now, before) -> {
      if (now == KafkaStreams.State.ERROR) {
        System.err.println("kafka streams: ERROR state");
        done.countDown();
      }
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      // Leave the group on close (Kafka Streams does not by default), so that a
      // restart is not held up by the old member's session timeout.
      streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
          .withTimeout(Duration.ofSeconds(10)));
      done.countDown();
    }));
    streams.start();
    System.err.println("started " + scenario);
    done.await();
  }

  static boolean endsWith7(byte[] k) {
    return k != null && k.length > 0 && k[k.length - 1] == '7';
  }

  static byte[] upper(byte[] v) {
    byte[] o = new byte[v.length];
    for (int i = 0; i < v.length; i++) {
      byte c = v[i];
      o[i] = (c >= 'a' && c <= 'z') ? (byte) (c - 32) : c;
    }
    return o;
  }
}
