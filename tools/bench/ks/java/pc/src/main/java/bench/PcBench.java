package bench;

import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import io.confluent.parallelconsumer.ParallelConsumerOptions;
import io.confluent.parallelconsumer.ParallelStreamProcessor;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Confluent parallel-consumer side of tools/bench/ks, scenario "slow": KEY ordering, a 5 ms
 * sleep per record, each record produced to OUT.
 *
 * <pre>java -cp 'target/classes:target/lib/*' bench.PcBench BROKERS IN OUT GROUP CONCURRENCY</pre>
 */
public final class PcBench {
  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println("usage: PcBench BROKERS IN OUT GROUP CONCURRENCY");
      System.exit(2);
    }
    String brokers = args[0], in = args[1], out = args[2], group = args[3];
    int concurrency = Integer.parseInt(args[4]);

    Properties c = new Properties();
    c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    c.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);

    ParallelConsumerOptions<byte[], byte[]> opts = ParallelConsumerOptions.<byte[], byte[]>builder()
        .ordering(ParallelConsumerOptions.ProcessingOrder.KEY)
        .maxConcurrency(concurrency)
        .consumer(new KafkaConsumer<>(c))
        .producer(new KafkaProducer<>(p))
        .build();
    ParallelStreamProcessor<byte[], byte[]> pc = ParallelStreamProcessor.createEosStreamProcessor(opts);
    pc.subscribe(List.of(in));
    pc.pollAndProduce(ctx -> {
      try {
        Thread.sleep(5);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      ConsumerRecord<byte[], byte[]> r = ctx.getSingleConsumerRecord();
      return new ProducerRecord<>(out, r.key(), r.value());
    });
    CountDownLatch done = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      pc.close();
      done.countDown();
    }));
    System.err.println("started slow (parallel-consumer)");
    done.await();
  }
}
