import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.errors.TopicExistsException;

/**
 * Readiness check plus idempotent topic creation in ONE JVM launch (TopicCommand
 * would need a JVM per topic, ~1-2 s each).
 *
 * <p>Usage: EnsureTopics BOOTSTRAP TIMEOUT_SECONDS BROKERS PARTITIONS REPLICATION TOPICS_FILE
 *
 * <p>Retries until listing topics works and BROKERS brokers have registered or the timeout
 * passes (the cluster is "ready" then: a topic with 3 replicas cannot be created on fewer
 * brokers), then creates the missing topics and checks that every wanted topic has at least
 * REPLICATION replicas, and that __consumer_offsets exists. Blank lines and '#' comments in the file are ignored. Exit code 0 on
 * success, 1 otherwise.
 */
public final class EnsureTopics {
  public static void main(String[] args) throws Exception {
    if (args.length != 6) {
      System.err.println(
          "usage: EnsureTopics BOOTSTRAP TIMEOUT_SECONDS BROKERS PARTITIONS REPLICATION TOPICS_FILE");
      System.exit(2);
    }
    String bootstrap = args[0];
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[1]));
    int brokers = Integer.parseInt(args[2]);
    int partitions = Integer.parseInt(args[3]);
    short replication = Short.parseShort(args[4]);
    List<String> wanted = new ArrayList<>();
    for (String line : Files.readAllLines(Path.of(args[5]))) {
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
      Object last = null;
      while (existing == null) {
        try {
          int registered = admin.describeCluster().nodes().get(5, TimeUnit.SECONDS).size();
          if (registered >= brokers) {
            existing = new TreeSet<>(admin.listTopics().names().get(5, TimeUnit.SECONDS));
          } else {
            last = registered + " of " + brokers + " brokers registered";
          }
        } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
          last = e;
        }
        if (existing == null) {
          if (System.nanoTime() > deadline) {
            System.err.println("EnsureTopics: cluster not ready at " + bootstrap + ": " + last);
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
      // A topic created earlier with fewer replicas (say, auto-created by a client before
      // this ran) would silently lose the guarantee: say so, and fail.
      int underReplicated = 0;
      if (failed == 0) {
        Map<String, TopicDescription> described = describe(admin, wanted, deadline);
        for (TopicDescription d : described.values()) {
          if (d.partitions().stream().anyMatch(p -> p.replicas().size() < replication)) {
            System.err.println(
                "EnsureTopics: " + d.name() + " has fewer than " + replication + " replicas");
            underReplicated++;
          }
        }
      }
      if (failed == 0 && underReplicated == 0) {
        groupCoordinator(admin, deadline);
      }
      System.out.printf(
          "topics: %d wanted, %d already present, %d created, %d failed,"
              + " replication factor %d%s%n",
          wanted.size(), wanted.size() - missing.size(), missing.size() - failed, failed,
          replication, underReplicated == 0 ? "" : " (" + underReplicated + " below it)");
      System.exit(failed == 0 && underReplicated == 0 ? 0 : 1);
    }
  }

  /**
   * Looking up a group's coordinator creates __consumer_offsets if it is missing. Done here,
   * while every broker is up: with 3 replicas it cannot be created on fewer, and consumer
   * groups would wait for the missing broker instead of surviving its loss.
   */
  private static void groupCoordinator(Admin admin, long deadline) throws Exception {
    while (true) {
      try {
        admin.describeConsumerGroups(List.of("ensure-topics")).all().get(10, TimeUnit.SECONDS);
        return;
      } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
        if (System.nanoTime() > deadline + TimeUnit.SECONDS.toNanos(30)) {
          throw e;
        }
        Thread.sleep(200);
      }
    }
  }

  /** New topics reach every broker's metadata a moment after creation: retry until then. */
  private static Map<String, TopicDescription> describe(
      Admin admin, List<String> topics, long deadline) throws Exception {
    while (true) {
      try {
        return admin.describeTopics(topics).allTopicNames().get(10, TimeUnit.SECONDS);
      } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
        if (System.nanoTime() > deadline + TimeUnit.SECONDS.toNanos(30)) {
          throw e;
        }
        Thread.sleep(200);
      }
    }
  }
}
