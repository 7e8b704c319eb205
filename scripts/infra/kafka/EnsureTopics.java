import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.errors.TopicExistsException;

/**
 * Readiness check plus idempotent topic creation in ONE JVM launch (TopicCommand
 * would need a JVM per topic, ~1-2 s each).
 *
 * <p>Usage: EnsureTopics BOOTSTRAP TIMEOUT_SECONDS PARTITIONS REPLICATION TOPICS_FILE
 *
 * <p>Retries listing topics until it succeeds or the timeout passes (the broker is
 * "ready" once that works), then creates the missing topics. Blank lines and
 * '#' comments in the file are ignored. Exit code 0 on success, 1 otherwise.
 */
public final class EnsureTopics {
  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println(
          "usage: EnsureTopics BOOTSTRAP TIMEOUT_SECONDS PARTITIONS REPLICATION TOPICS_FILE");
      System.exit(2);
    }
    String bootstrap = args[0];
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[1]));
    int partitions = Integer.parseInt(args[2]);
    short replication = Short.parseShort(args[3]);
    List<String> wanted = new ArrayList<>();
    for (String line : Files.readAllLines(Path.of(args[4]))) {
      String t = line.replaceFirst("#.*", "").strip();
      if (!t.isEmpty()) {
        wanted.add(t);
      }
    }

    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
    try (Admin admin = Admin.create(props)) {
      Set<String> existing = null;
      Exception last = null;
      while (existing == null) {
        try {
          existing = new TreeSet<>(admin.listTopics().names().get(5, TimeUnit.SECONDS));
        } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
          last = e;
          if (System.nanoTime() > deadline) {
            System.err.println("EnsureTopics: broker not ready at " + bootstrap + ": " + last);
            System.exit(1);
          }
          Thread.sleep(200);
        }
      }

      List<NewTopic> missing = new ArrayList<>();
      for (String t : wanted) {
        if (!existing.contains(t)) {
          missing.add(new NewTopic(t, partitions, replication));
        }
      }
      int failed = 0;
      if (!missing.isEmpty()) {
        CreateTopicsResult res = admin.createTopics(missing);
        for (NewTopic nt : missing) {
          try {
            res.values().get(nt.name()).get(30, TimeUnit.SECONDS);
          } catch (ExecutionException e) {
            // A concurrent creator (or auto-create by a client) won the race: fine.
            if (!(e.getCause() instanceof TopicExistsException)) {
              System.err.println("EnsureTopics: creating " + nt.name() + " failed: " + e.getCause());
              failed++;
            }
          }
        }
      }
      System.out.printf(
          "topics: %d wanted, %d already present, %d created, %d failed%n",
          wanted.size(), wanted.size() - missing.size(), missing.size() - failed, failed);
      System.exit(failed == 0 ? 0 : 1);
    }
  }
}
