<?xml version="1.0" encoding="UTF-8"?>
<!-- Worked example of a JSON http adapter's export transform: a PCC (the
     person-details the request's source-sel selects, already filtered by its
     fields) into a Person of a service shaped like the Google People API,
     written in the XML representation of JSON that xdmsd turns into the
     JSON body (docs/operations.md, "Connecting a JSON REST service with
     OAuth 2.0"). The body is what people.updateContact takes; the adapter's
     URL names the contact and updatePersonFields, its export method PATCH. -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:p="urn:oma:xml:cab:pcc"
                xmlns="http://www.w3.org/2005/xpath-functions"
                exclude-result-prefixes="p">
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>
  <xsl:strip-space elements="*"/>
  <xsl:param name="xui"/>
  <xsl:param name="remote-user"/>

  <xsl:template match="/">
    <xsl:apply-templates select="p:pcc/p:person-details[1]"/>
  </xsl:template>

  <!-- The part of a URI after its scheme (tel:, mailto:). -->
  <xsl:template name="after-scheme">
    <xsl:param name="u"/>
    <xsl:choose>
      <xsl:when test="starts-with($u, 'tel:')"><xsl:value-of select="substring($u, 5)"/></xsl:when>
      <xsl:when test="starts-with($u, 'mailto:')"><xsl:value-of select="substring($u, 8)"/></xsl:when>
      <xsl:otherwise><xsl:value-of select="$u"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="p:person-details">
    <xsl:variable name="n" select="p:name/p:name-entry[1]"/>
    <xsl:variable name="tels" select="p:comm-addr/p:tel"/>
    <xsl:variable name="mails" select="p:comm-addr/p:uri-entry[@addr-uri-type = 'Email' or starts-with(normalize-space(p:addr-uri), 'mailto:')]"/>
    <map>
      <xsl:if test="$n">
        <array key="names">
          <map>
            <xsl:for-each select="$n/p:display-name[1]"><string key="displayName"><xsl:value-of select="."/></string></xsl:for-each>
            <xsl:for-each select="($n/p:given | $n/p:first)[1]"><string key="givenName"><xsl:value-of select="."/></string></xsl:for-each>
            <xsl:for-each select="$n/p:middle[1]"><string key="middleName"><xsl:value-of select="."/></string></xsl:for-each>
            <xsl:for-each select="$n/p:family[1]"><string key="familyName"><xsl:value-of select="."/></string></xsl:for-each>
          </map>
        </array>
      </xsl:if>
      <xsl:if test="$tels">
        <array key="phoneNumbers">
          <xsl:for-each select="$tels">
            <map>
              <string key="value">
                <xsl:call-template name="after-scheme"><xsl:with-param name="u" select="normalize-space(p:tel-nb/p:tel-string)"/></xsl:call-template>
              </string>
              <string key="type">
                <xsl:choose>
                  <xsl:when test="@tel-type = 'Mobile'">mobile</xsl:when>
                  <xsl:when test="@tel-type = 'Work'">work</xsl:when>
                  <xsl:when test="@tel-type = 'Home'">home</xsl:when>
                  <xsl:when test="@tel-type = 'Fax'">otherFax</xsl:when>
                  <xsl:otherwise>other</xsl:otherwise>
                </xsl:choose>
              </string>
            </map>
          </xsl:for-each>
        </array>
      </xsl:if>
      <xsl:if test="$mails">
        <array key="emailAddresses">
          <xsl:for-each select="$mails">
            <map>
              <string key="value">
                <xsl:call-template name="after-scheme"><xsl:with-param name="u" select="normalize-space(p:addr-uri)"/></xsl:call-template>
              </string>
            </map>
          </xsl:for-each>
        </array>
      </xsl:if>
      <xsl:if test="p:address/p:address-entry">
        <array key="addresses">
          <xsl:for-each select="p:address/p:address-entry">
            <map>
              <string key="formattedValue"><xsl:value-of select="normalize-space(p:address-data/p:addr-string)"/></string>
              <string key="type">
                <xsl:choose>
                  <xsl:when test="@address-type = 'Home'">home</xsl:when>
                  <xsl:when test="@address-type = 'Work' or @address-type = 'Business'">work</xsl:when>
                  <xsl:otherwise>other</xsl:otherwise>
                </xsl:choose>
              </string>
            </map>
          </xsl:for-each>
        </array>
      </xsl:if>
      <xsl:if test="p:career/p:employer or p:career/p:duty">
        <array key="organizations">
          <map>
            <xsl:for-each select="p:career/p:employer[1]"><string key="name"><xsl:value-of select="."/></string></xsl:for-each>
            <xsl:for-each select="p:career/p:duty[1]"><string key="title"><xsl:value-of select="."/></string></xsl:for-each>
          </map>
        </array>
      </xsl:if>
      <xsl:for-each select="p:birth/p:birth-date/p:date[string-length(normalize-space(.)) = 10][1]">
        <array key="birthdays">
          <map>
            <map key="date">
              <number key="year"><xsl:value-of select="number(substring(normalize-space(.), 1, 4))"/></number>
              <number key="month"><xsl:value-of select="number(substring(normalize-space(.), 6, 2))"/></number>
              <number key="day"><xsl:value-of select="number(substring(normalize-space(.), 9, 2))"/></number>
            </map>
          </map>
        </array>
      </xsl:for-each>
    </map>
  </xsl:template>
</xsl:stylesheet>
