"""What a pull request sees: GitHub's limits and the comments' markers (github), posting a comment
edited by id (pr_comment: the standard library only), the review environment's comment
(review_comment), and a command's output as a comment (output_comment: the render diff, a preview)."""
